/**
 * Presence on one instance. Polling `{topic}@presence` makes a client present on `topic`; the
 * broker keeps the entries with a TTL and publishes joins and leaves on the presence topic. This
 * module keeps the entries of the clients this instance holds alive (one broker write per client
 * and topic per half TTL, not one per poll), sweeps the topics it knows so a vanished client's
 * leave is published (by whichever instance comes first: the broker's step is atomic), makes the
 * `sync` that starts a presence topic after a handshake or a reset, and takes `_leave` requests.
 */
import { createHash } from 'node:crypto';
import { isValidTopic, PRESENCE_SUFFIX } from '@cometkit/core/protocol';
import type { Broker, BrokerPresence, BrokerPresenceMember, BrokerReadResult } from '../broker';
import type { ResolvedPresenceOptions, ServerLogEvent } from '../options';
import type { Caller } from './credentials';
import { badRequest, isRecord } from './request';

/** The topic whose presence `topic` carries, or undefined when it is not a presence topic. */
export function presenceBase(topic: string): string | undefined {
  if (!topic.endsWith(PRESENCE_SUFFIX)) return undefined;
  const base = topic.slice(0, -PRESENCE_SUFFIX.length);
  return isValidTopic(base) ? base : undefined;
}

/**
 * The public id of a client instance: derived from its sessionGuid, which stays secret (it
 * scopes the idempotency of sends without a userId).
 */
export function memberId(sessionGuid: string): string {
  return createHash('sha256').update(sessionGuid).digest('base64url').slice(0, 16);
}

/** How long after a session's `_leave` its requests do not join it again, in ms. */
const LEFT_MS = 2_000;

/** One client present on one topic, as this instance renews it. */
interface Entry {
  topic: string;
  /** Undefined until the `member` hook answered; `false`: not shown to others. */
  member: BrokerPresenceMember | false | undefined;
  /** When this instance last wrote the entry (or decided not to), `Date.now()` ms. */
  renewedAt: number;
  /** Held requests (poll, stream, socket) of the client on this instance that name the topic. */
  holders: number;
  writing: boolean;
}

/** Presence on this instance. */
export interface PresenceKeeper {
  /** The broker's presence store. */
  readonly store: BrokerPresence;
  /**
   * A request of `session` holds the allowed `topics`: its presence topics are joined or renewed
   * (renewed for as long as it holds). `ready` settles once a join it made is written (so the
   * client's own sync includes it); `release` ends the hold.
   */
  hold(caller: Caller, topics: readonly string[]): { ready: Promise<void>; release: () => void };
  /** `result` of reading presence `topic` after `cursor`, with a `sync` when it starts over. */
  withSync(
    topic: string,
    cursor: string | undefined,
    result: BrokerReadResult | undefined,
  ): Promise<BrokerReadResult> | undefined;
  /** Takes the body of `POST {base}/_leave`: the session leaves those presence topics. */
  leave(body: unknown): Promise<void>;
  /** Stops the renewal timer. */
  close(): void;
}

/** Makes the keeper of a server with `presence`; throws when the broker has no presence. */
export function createPresenceKeeper(
  broker: Broker,
  options: ResolvedPresenceOptions,
  log: (event: ServerLogEvent) => void,
): PresenceKeeper {
  const store = broker.presence;
  if (!store) throw new TypeError('createCometServer: presence needs a broker with presence');
  const { ttl, dataLimit } = options;
  const entries = new Map<string, Entry>();
  // A session's `_leave` can overtake a poll the client sent just before it (a long-poll re-poll
  // already on the wire when the page closed): that poll must not join it again. Its keys are
  // not joined for LEFT_MS; a session that really comes back is joined by the renewal timer.
  const left = new Map<string, number>();

  const failed = (error: unknown, topic: string) =>
    log({
      level: 'error',
      event: 'presence.failed',
      message: 'a presence write failed',
      topic,
      error,
    });

  async function memberOf(
    { req, sessionGuid, userId, identity }: Caller,
    topic: string,
  ): Promise<BrokerPresenceMember | false> {
    const id = memberId(sessionGuid as string);
    const hook = options.member;
    const given = hook
      ? await hook({ req, topic, sessionGuid: sessionGuid as string, userId, identity })
      : { userId };
    if (given === false || !isRecord(given)) return false;
    const member: BrokerPresenceMember = { id };
    if (typeof given.userId === 'string') member.userId = given.userId;
    if (given.data !== undefined) {
      const size = Buffer.byteLength(JSON.stringify(given.data) ?? '');
      if (size <= dataLimit) member.data = given.data;
      else
        log({
          level: 'warn',
          event: 'presence.data-dropped',
          message: `presence data of ${size} B is over presence.dataLimit (${dataLimit} B)`,
          topic,
        });
    }
    return member;
  }

  async function renew(entry: Entry, resolve?: () => Promise<BrokerPresenceMember | false>) {
    if (entry.writing) return;
    entry.writing = true;
    const started = Date.now();
    try {
      if (entry.member === undefined && resolve) entry.member = await resolve();
      if (entry.member) await store?.join(entry.topic, entry.member, ttl);
      entry.renewedAt = started;
    } catch (error) {
      failed(error, entry.topic);
    } finally {
      entry.writing = false;
    }
  }

  // Renews what this instance holds when less than half the TTL is left, and sweeps every topic
  // it knows; an entry nobody held for 1.5 TTL is forgotten (the broker's expired by then).
  const timer = setInterval(() => {
    const now = Date.now();
    const topics = new Set<string>();
    for (const [key, at] of left) if (now - at >= LEFT_MS) left.delete(key);
    for (const [key, entry] of entries) {
      topics.add(entry.topic);
      const age = now - entry.renewedAt;
      if (entry.holders > 0 && age >= ttl / 2 && !left.has(key)) void renew(entry);
      else if (entry.holders === 0 && !entry.writing && age > ttl * 1.5) entries.delete(key);
    }
    for (const topic of topics) store.sweep(topic).catch((error) => failed(error, topic));
  }, ttl / 4);
  timer.unref?.();

  return {
    store,

    hold(caller, topics) {
      const held: Entry[] = [];
      const writes: Promise<void>[] = [];
      if (caller.sessionGuid === undefined) return { ready: Promise.resolve(), release() {} };
      for (const topic of topics) {
        if (presenceBase(topic) === undefined) continue;
        const key = `${caller.sessionGuid} ${topic}`;
        let entry = entries.get(key);
        if (!entry) {
          entry = { topic, member: undefined, renewedAt: 0, holders: 0, writing: false };
          entries.set(key, entry);
        }
        entry.holders += 1;
        held.push(entry);
        const leftAt = left.get(key);
        if (leftAt !== undefined && Date.now() - leftAt < LEFT_MS) continue;
        if (Date.now() - entry.renewedAt >= ttl / 2) {
          const base = presenceBase(topic) as string;
          writes.push(renew(entry, () => memberOf(caller, base)));
        }
      }
      let holding = held.length > 0;
      return {
        // `renew` never rejects: a failed write is logged and tried again.
        ready: writes.length > 0 ? Promise.all(writes).then(() => {}) : Promise.resolve(),
        release() {
          if (!holding) return;
          holding = false;
          for (const entry of held) entry.holders -= 1;
        },
      };
    },

    withSync(topic, cursor, result) {
      if (presenceBase(topic) === undefined || (cursor !== undefined && !result?.reset)) {
        return undefined;
      }
      const reset = result?.reset ?? false;
      return store.snapshot(topic).then(({ members, position }) => ({
        messages: [{ topic, id: position, data: { event: 'sync', members } }],
        position,
        reset,
        more: false,
      }));
    },

    async leave(body) {
      if (!isRecord(body) || typeof body.sessionGuid !== 'string' || !Array.isArray(body.topics)) {
        throw badRequest('a leave is {"v":1,"sessionGuid":string,"topics":[presence topics]}');
      }
      const { sessionGuid, topics } = body;
      const id = memberId(sessionGuid);
      await Promise.all(
        topics.slice(0, 100).map((topic) => {
          if (typeof topic !== 'string' || presenceBase(topic) === undefined) return undefined;
          entries.delete(`${sessionGuid} ${topic}`);
          left.set(`${sessionGuid} ${topic}`, Date.now());
          return store.leave(topic, id);
        }),
      );
    },

    close() {
      clearInterval(timer);
    },
  };
}
