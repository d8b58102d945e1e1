/**
 * The idempotency key of a send: which earlier send a retry repeats. One home for the rule, so
 * the authentication work can scope keys by a verified identity in one place (`sendScope`).
 *
 * A key is made of parts, each written as `<length>:<part>`: no part can run into the next, so
 * two different part lists never make the same key, whatever characters the parts hold (guid
 * `G:a` with topic `b` and guid `G` with topic `a:b` are two keys).
 */

/** Whose sends a key belongs to: a kind (`user`, `session`) and a value. */
export type SendScope = readonly [kind: 'user' | 'session', value: string];

/** What the scope is read from: the parts of a send that say who it is from. */
export interface SendOrigin {
  sessionGuid: string | undefined;
  /** As the client says; the authentication hook will give a verified identity instead. */
  userId: string | undefined;
}

/**
 * Who a send is from, for its idempotency key: the user when the request names one, else the
 * session. `undefined` when it names neither (a legacy send without a session): such a send
 * has no idempotency window (each one publishes), because one shared scope would let any two
 * anonymous clients' ids collide.
 */
export function sendScope(origin: SendOrigin): SendScope | undefined {
  if (origin.userId !== undefined && origin.userId !== '') return ['user', origin.userId];
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
