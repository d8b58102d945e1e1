/**
 * The idempotency key of a send: which earlier send a retry repeats. One home for the rule, so
 * the keys are scoped by the `identify` hook's verified identity in one place (`sendScope`).
 *
 * A key is made of parts, each written as `<length>:<part>`: no part can run into the next, so
 * two different part lists never make the same key, whatever characters the parts hold (guid
 * `G:a` with topic `b` and guid `G` with topic `a:b` are two keys).
 */

/** Whose sends a key belongs to: a kind (`identity`, `user`, `session`) and a value. */
export type SendScope = readonly [kind: 'identity' | 'user' | 'session', value: string];

/** What the scope is read from: the parts of a send that say who it is from. */
export interface SendOrigin {
  sessionGuid: string | undefined;
  /** As the client says: trusted for the scope only when the server has no `identify` hook. */
  userId: string | undefined;
  /** What the server's `identify` hook answered (verified), if it has one. */
  identity?: string | undefined;
}

/**
 * Who a send is from, for its idempotency key. With an `identify` hook (`identifies`): the
 * verified identity, else the session; the client's own `userId` is not used then, so nobody
 * can claim another user's keys (read their message ids or block their sends) by naming them.
 * Without one: the user when the request names one, else the session. `undefined` when it names
 * neither (a legacy send without a session): such a send has no idempotency window (each one
 * publishes), because one shared scope would let any two anonymous clients' ids collide.
 */
export function sendScope(origin: SendOrigin, identifies = false): SendScope | undefined {
  if (identifies) {
    if (origin.identity !== undefined && origin.identity !== '') {
      return ['identity', origin.identity];
    }
  } else if (origin.userId !== undefined && origin.userId !== '') {
    return ['user', origin.userId];
  }
  if (origin.sessionGuid !== undefined && origin.sessionGuid !== '') {
    return ['session', origin.sessionGuid];
  }
  return undefined;
}

/** Joins parts as `<length>:<part>`…: a prefix-free encoding, so keys never collide. */
export function encodeKey(parts: readonly string[]): string {
  let key = '';
  for (const part of parts) key += `${part.length}:${part}`;
  return key;
}

/**
 * The idempotency key of the send `id` to `topic` by `scope`; with `publish`, the key of the
 * `publish`-th publish (from 1) an `onSend` hook makes for that send: a retried send runs the
 * hook again, and each of its publishes repeats the first run's, once. All keys decode to one
 * part list each, so no key of one kind equals a key of the other.
 */
export function sendKey(scope: SendScope, topic: string, id: string, publish?: number): string {
  const parts = [scope[0], scope[1], topic, id];
  if (publish !== undefined) parts.push(String(publish));
  return encodeKey(parts);
}
