/**
 * The in-memory broker: per-topic history in ring buffers, wake-ups in process (through the
 * shared listener registry) and idempotency records written with the publish, for one process.
 */
import type { Broker, BrokerMessage, BrokerPublishOptions, BrokerReadResult } from '../broker';
import { createListenerRegistry } from './listeners';

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
  /**
   * How many listeners are registered (one per held request): 0 when nothing is held. The
   * servers' control listeners (reserved `_` topics) are not counted.
   */
  listenerCount(): number;
}

/**
 * One topic's history: a ring buffer of parallel arrays (no object per message, so a burst
 * leaves the garbage collector less to copy). Slot `(start + i) % capacity` holds the i-th
 * kept message; seqs are consecutive, so the i-th one's seq is `lastSeq - count + 1 + i`.
 * The arrays grow by doubling up to `historySize`, so a quiet topic does not pay for a full ring.
 */
interface TopicLog {
  /** The ids, made once at publish and handed out by every read. */
  ids: string[];
  times: number[];
  data: unknown[];
  capacity: number;
  start: number;
  count: number;
  /** The seq of the newest message ever published (0 before the first). */
  lastSeq: number;
}

interface IdempotencyRecord {
  /** The message id the first publish with the key got. */
  id: string;
  expiresAt: number;
}

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
  const listeners = createListenerRegistry();
  // Idempotency records by topic and key. A Map keeps insertion order, so the first keys are
  // the oldest when trimming.
  const records = new Map<string, IdempotencyRecord>();
  let closed = false;

  const idOf = (seq: number) => `${prefix}${seq}`;

  function logOf(topic: string): TopicLog {
    let log = logs.get(topic);
    if (!log) {
      log = {
        ids: [],
        times: [],
        data: [],
        capacity: Math.min(historySize, 16),
        start: 0,
        count: 0,
        lastSeq: 0,
      };
      logs.set(topic, log);
    }
    return log;
  }

  /** The slot of the `index`-th kept message. */
  function slot(log: TopicLog, index: number): number {
    const at = log.start + index;
    return at < log.capacity ? at : at - log.capacity;
  }

  function dropOldest(log: TopicLog): void {
    // Only `data` can hold on to memory; ids and times are overwritten when the slot is reused.
    log.data[log.start] = undefined;
    log.start = log.start + 1 === log.capacity ? 0 : log.start + 1;
    log.count -= 1;
  }

  /** Doubles a full ring (up to `historySize`), laying its messages out from slot 0 again. */
  function grow(log: TopicLog): void {
    const capacity = Math.min(historySize, log.capacity * 2);
    if (log.start !== 0) {
      const order = (list: unknown[]) => list.slice(log.start).concat(list.slice(0, log.start));
      log.ids = order(log.ids) as string[];
      log.times = order(log.times) as number[];
      log.data = order(log.data);
      log.start = 0;
    }
    log.capacity = capacity;
  }

  function trimByAge(log: TopicLog, time: number): void {
    const oldest = time - historyMaxAge;
    while (log.count > 0 && (log.times[log.start] as number) < oldest) dropOldest(log);
  }

  /** The seq of the oldest kept message (`lastSeq + 1` when none is kept). */
  function firstSeq(log: TopicLog): number {
    return log.lastSeq - log.count + 1;
  }

  /** The seq a cursor names, or undefined when it is not from this broker's epoch. */
  function seqOf(cursor: string): number | undefined {
    if (!cursor.startsWith(prefix)) return undefined;
    const text = cursor.slice(prefix.length);
    if (!/^\d{1,15}$/.test(text)) return undefined;
    return Number(text);
  }

  /** Appends to `topic`'s history, wakes its listeners and answers the new id. */
  function append(topic: string, data: unknown): string {
    const log = logOf(topic);
    const time = now();
    trimByAge(log, time);
    if (log.count === log.capacity) {
      if (log.capacity < historySize) grow(log);
      else dropOldest(log);
    }
    log.lastSeq += 1;
    const id = prefix + log.lastSeq;
    const at = slot(log, log.count);
    log.ids[at] = id;
    log.times[at] = time;
    log.data[at] = data;
    log.count += 1;
    listeners.notify(topic);
    return id;
  }

  function assertOpen(): void {
    if (closed) throw new Error('memory broker is closed');
  }

  return {
    epoch,

    // Not `async`: a burst of publishes makes one promise each, not three (less GC). The
    // topic is not validated here: the server checks it once at its edge.
    publish(topic, data, options?: BrokerPublishOptions) {
      if (closed) return Promise.reject(new Error('memory broker is closed'));
      const once = options?.idempotency;
      if (once === undefined) return Promise.resolve(append(topic, data));
      // The check, the append and the record are one synchronous step: no other publish (and
      // no crash short of the process's, which takes the whole broker with it) comes between.
      const recordKey = `${topic.length}:${topic}${once.key}`;
      const time = now();
      const record = records.get(recordKey);
      if (record !== undefined && record.expiresAt > time) return Promise.resolve(record.id);
      const id = append(topic, data);
      records.delete(recordKey);
      records.set(recordKey, { id, expiresAt: time + once.ttlMs });
      // Bounded: the oldest records (first in the Map's order) make room.
      if (records.size > maxKeys) {
        for (const oldKey of records.keys()) {
          records.delete(oldKey);
          if (records.size <= maxKeys) break;
        }
      }
      return Promise.resolve(id);
    },

    async read(topic, cursor, limit): Promise<BrokerReadResult> {
      assertOpen();
      const log = logs.get(topic);
      if (log) trimByAge(log, now());
      const lastSeq = log?.lastSeq ?? 0;
      const position =
        log && log.count > 0 ? (log.ids[slot(log, log.count - 1)] as string) : idOf(lastSeq);
      if (cursor === undefined) return { messages: [], position, reset: false, more: false };
      const seq = seqOf(cursor);
      const firstKept = log ? firstSeq(log) : 1;
      // Unknown epoch (another process: this one's history starts at seq 0) or history trimmed
      // past the cursor: resume just before the oldest message kept, so nothing still here is
      // skipped. A position this broker never reached: resume from the newest.
      if (seq === undefined || seq < firstKept - 1) {
        return { messages: [], position: idOf(firstKept - 1), reset: true, more: false };
      }
      if (seq > lastSeq) return { messages: [], position, reset: true, more: false };
      if (!log || seq === lastSeq) return { messages: [], position, reset: false, more: false };
      const from = seq - firstKept + 1;
      const to = Math.min(log.count, from + Math.max(0, limit));
      const messages: BrokerMessage[] = [];
      for (let index = from; index < to; index += 1) {
        const at = slot(log, index);
        messages.push({ topic, id: log.ids[at] as string, data: log.data[at] });
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
      trimByAge(log, now());
      const count = Math.min(log.count, Math.max(0, Math.floor(limit)));
      const messages: BrokerMessage[] = [];
      for (let index = log.count - count; index < log.count; index += 1) {
        const at = slot(log, index);
        messages.push({ topic, id: log.ids[at] as string, data: log.data[at] });
      }
      return { messages, position: idOf(log.lastSeq) };
    },

    listen(topics, onPublish) {
      assertOpen();
      return listeners.add(topics, onPublish);
    },

    listenerCount() {
      return listeners.size();
    },

    async close() {
      closed = true;
      logs.clear();
      listeners.clear();
      records.clear();
    },
  };
}
