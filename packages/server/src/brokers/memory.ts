import type { Broker, BrokerMessage, BrokerReadResult, IdempotencyReservation } from '../broker';

/** Options of {@link createMemoryBroker}. */
export interface MemoryBrokerOptions {
  /**
   * How many messages each topic keeps. A cursor older than the kept history gets a `reset`.
   * @default 1000
   */
  historySize?: number;
  /**
   * How long a message stays in history, in ms. Older ones are trimmed.
   * @default 300_000 (5 minutes)
   */
  historyMaxAge?: number;
  /**
   * The epoch written in every id. It must change with every process start so that a cursor
   * from an older start (or another process) gives a `reset`, never a silent gap.
   * @default a random string made when the broker is created
   */
  epoch?: string;
  /**
   * How many send answers the idempotency store keeps at most; the oldest go first.
   * @default 100_000
   */
  maxIdempotencyKeys?: number;
  /**
   * The clock, in ms since the epoch (injected for tests).
   * @default Date.now
   */
  now?: () => number;
}

/** A memory broker with a few numbers for tests and monitoring. */
export interface MemoryBroker extends Broker {
  /** The epoch of this broker's ids. */
  readonly epoch: string;
  /** How many listeners are registered (one per held request): 0 when nothing is held. */
  listenerCount(): number;
}

interface Entry {
  seq: number;
  at: number;
  data: unknown;
}

/** One topic's history: a ring buffer of entries whose seqs are consecutive. */
interface TopicLog {
  items: (Entry | undefined)[];
  start: number;
  count: number;
  /** The seq of the newest message ever published (0 before the first). */
  lastSeq: number;
}

interface IdempotencyEntry {
  value: string | undefined;
  expiresAt: number;
}

// Pending reservations expire too, so a crashed publish cannot block a key for good.
const PENDING_TTL_MS = 30_000;

function randomEpoch(): string {
  return `${Date.now().toString(36)}${Math.floor(Math.random() * 36 ** 4)
    .toString(36)
    .padStart(4, '0')}`;
}

function positiveInteger(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < 1) {
    throw new TypeError(`createMemoryBroker: ${name} must be a positive integer, got ${value}`);
  }
  return value;
}

/**
 * The in-memory broker: per-topic history in a ring buffer bounded by count and age, ids
 * `<epoch>-<seq>`, wake-ups in process, and an idempotency store with TTL. Right for one
 * process, or several server instances in one process sharing this object; use
 * `@cometkit/redis` across processes.
 */
export function createMemoryBroker(options: MemoryBrokerOptions = {}): MemoryBroker {
  const historySize = positiveInteger('historySize', options.historySize, 1000);
  const historyMaxAge = positiveInteger('historyMaxAge', options.historyMaxAge, 300_000);
  const maxKeys = positiveInteger('maxIdempotencyKeys', options.maxIdempotencyKeys, 100_000);
  const now = options.now ?? Date.now;
  const epoch = options.epoch ?? randomEpoch();
  if (epoch.length === 0 || epoch.includes('-')) {
    throw new TypeError(`createMemoryBroker: epoch must be non-empty without "-", got "${epoch}"`);
  }
  const prefix = `${epoch}-`;
  const logs = new Map<string, TopicLog>();
  const listeners = new Map<string, Set<(topic: string) => void>>();
  // A Map keeps insertion order, so the first keys are the oldest when trimming.
  const keys = new Map<string, IdempotencyEntry>();
  let listenerTotal = 0;
  let closed = false;

  const idOf = (seq: number) => `${prefix}${seq}`;

  function logOf(topic: string): TopicLog {
    let log = logs.get(topic);
    if (!log) {
      log = { items: [], start: 0, count: 0, lastSeq: 0 };
      logs.set(topic, log);
    }
    return log;
  }

  function at(log: TopicLog, index: number): Entry {
    const entry = log.items[(log.start + index) % historySize];
    if (!entry) throw new Error('memory broker: ring buffer index out of range');
    return entry;
  }

  function dropOldest(log: TopicLog): void {
    log.items[log.start] = undefined;
    log.start = (log.start + 1) % historySize;
    log.count -= 1;
  }

  function trimByAge(log: TopicLog): void {
    const oldest = now() - historyMaxAge;
    while (log.count > 0 && at(log, 0).at < oldest) dropOldest(log);
  }

  /** The seq a cursor names, or undefined when it is not from this broker's epoch. */
  function seqOf(cursor: string): number | undefined {
    if (!cursor.startsWith(prefix)) return undefined;
    const text = cursor.slice(prefix.length);
    if (!/^\d{1,15}$/.test(text)) return undefined;
    return Number(text);
  }

  function assertOpen(): void {
    if (closed) throw new Error('memory broker is closed');
  }

  return {
    epoch,

    // Not `async`: a burst of publishes makes one promise each, not three (less GC).
    publish(topic, data) {
      if (closed) return Promise.reject(new Error('memory broker is closed'));
      const log = logOf(topic);
      trimByAge(log);
      if (log.count === historySize) dropOldest(log);
      log.lastSeq += 1;
      log.items[(log.start + log.count) % historySize] = { seq: log.lastSeq, at: now(), data };
      log.count += 1;
      const id = idOf(log.lastSeq);
      const set = listeners.get(topic);
      if (set) {
        // A copy: a listener may remove itself (its request answered) while we iterate.
        for (const listener of [...set]) {
          try {
            listener(topic);
          } catch {
            // A listener's failure is its own; the other listeners still get the wake-up.
          }
        }
      }
      return Promise.resolve(id);
    },

    async read(topic, cursor, limit): Promise<BrokerReadResult> {
      assertOpen();
      const log = logs.get(topic);
      if (log) trimByAge(log);
      const lastSeq = log?.lastSeq ?? 0;
      const position = idOf(lastSeq);
      if (cursor === undefined) return { messages: [], position, reset: false, more: false };
      const seq = seqOf(cursor);
      const firstKept = log && log.count > 0 ? at(log, 0).seq : lastSeq + 1;
      // Unknown epoch, a position this broker never reached, or history trimmed past it.
      if (seq === undefined || seq > lastSeq || seq < firstKept - 1) {
        return { messages: [], position, reset: true, more: false };
      }
      if (!log || seq === lastSeq) return { messages: [], position, reset: false, more: false };
      const from = seq - firstKept + 1;
      const to = Math.min(log.count, from + Math.max(0, limit));
      const messages: BrokerMessage[] = [];
      for (let index = from; index < to; index += 1) {
        const entry = at(log, index);
        messages.push({ topic, id: idOf(entry.seq), data: entry.data });
      }
      const last = messages.at(-1);
      return {
        messages,
        position: last ? last.id : cursor,
        reset: false,
        more: to < log.count,
      };
    },

    async recent(topic, limit) {
      assertOpen();
      const log = logs.get(topic);
      if (!log) return { messages: [], position: idOf(0) };
      trimByAge(log);
      const count = Math.min(log.count, Math.max(0, Math.floor(limit)));
      const messages: BrokerMessage[] = [];
      for (let index = log.count - count; index < log.count; index += 1) {
        const entry = at(log, index);
        messages.push({ topic, id: idOf(entry.seq), data: entry.data });
      }
      return { messages, position: idOf(log.lastSeq) };
    },

    listen(topics, onPublish) {
      assertOpen();
      const unique = [...new Set(topics)];
      for (const topic of unique) {
        let set = listeners.get(topic);
        if (!set) {
          set = new Set();
          listeners.set(topic, set);
        }
        set.add(onPublish);
      }
      listenerTotal += 1;
      let active = true;
      return () => {
        if (!active) return;
        active = false;
        listenerTotal -= 1;
        for (const topic of unique) {
          const set = listeners.get(topic);
          if (!set) continue;
          set.delete(onPublish);
          if (set.size === 0) listeners.delete(topic);
        }
      };
    },

    async reserve(key, ttlMs): Promise<IdempotencyReservation> {
      assertOpen();
      const time = now();
      const entry = keys.get(key);
      if (entry && entry.expiresAt > time) {
        return entry.value === undefined
          ? { state: 'pending' }
          : { state: 'done', value: entry.value };
      }
      keys.delete(key);
      keys.set(key, { value: undefined, expiresAt: time + Math.min(ttlMs, PENDING_TTL_MS) });
      // Bounded: the oldest keys (first in the Map's order) make room.
      for (const oldKey of keys.keys()) {
        if (keys.size <= maxKeys) break;
        keys.delete(oldKey);
      }
      return { state: 'new' };
    },

    async complete(key, value, ttlMs) {
      assertOpen();
      keys.delete(key);
      keys.set(key, { value, expiresAt: now() + ttlMs });
    },

    async release(key) {
      const entry = keys.get(key);
      if (entry && entry.value === undefined) keys.delete(key);
    },

    listenerCount() {
      return listenerTotal;
    },

    async close() {
      closed = true;
      logs.clear();
      listeners.clear();
      keys.clear();
      listenerTotal = 0;
    },
  };
}
