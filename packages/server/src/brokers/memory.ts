/**
 * The in-memory broker: per-topic history in ring buffers bounded by count, bytes and age (swept
 * on a timer, empty topics removed, a broker-wide cap on bytes and topics), wake-ups in process
 * (through the shared listener registry), idempotency records written with the publish, and
 * presence entries whose joins and leaves are appended in the same synchronous step, for one
 * process.
 */
import type {
  Broker,
  BrokerMessage,
  BrokerPresence,
  BrokerPresenceMember,
  BrokerPublishOptions,
  BrokerReadResult,
} from '../broker';
import { createListenerRegistry } from './listeners';

/** Options of {@link createMemoryBroker}. */
export interface MemoryBrokerOptions {
  /**
   * The most messages a topic keeps (a count cap next to `historyMaxBytes`). A cursor older than
   * the kept history gets a `reset`.
   * @default 100_000
   */
  historySize?: number;
  /**
   * The most bytes of message JSON a topic keeps (UTF-8 length of each message's `data` as JSON);
   * the oldest messages go first. The default holds a burst of 20 000 messages of 200 bytes.
   * @default 4_194_304 (4 MiB)
   */
  historyMaxBytes?: number;
  /**
   * How long a message stays in history, in ms. Older ones are trimmed when their topic is
   * touched and by a sweep every `sweepInterval`; a topic left with nothing is removed.
   * @default 300_000 (5 minutes)
   */
  historyMaxAge?: number;
  /**
   * The most bytes of message JSON the whole broker keeps; past it, the topic published to least
   * recently loses its oldest messages first (a topic emptied so is removed).
   * @default 67_108_864 (64 MiB)
   */
  maxBytes?: number;
  /**
   * The most topics with history; a publish to a new topic past it removes the topic published
   * to least recently.
   * @default 100_000
   */
  maxTopics?: number;
  /**
   * How often the history of every topic is trimmed by age, in ms (an unref'd timer: it never
   * keeps the process alive).
   * @default 30_000
   */
  sweepInterval?: number;
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

/** How much a memory broker holds, for tests and monitoring. */
export interface MemoryBrokerUsage {
  /** Topics with a history (empty ones are removed by the sweep). */
  topics: number;
  /** Messages kept, all topics. */
  messages: number;
  /** Bytes of message JSON kept, all topics. */
  bytes: number;
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
  /** What the history holds now. */
  usage(): MemoryBrokerUsage;
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
  /** Bytes of each message's JSON. */
  sizes: number[];
  /**
   * Each message's data as JSON, encoded once at publish: all that is kept of it, handed out
   * by every read (and decoded only when a reader asks for `data`).
   */
  json: string[];
  capacity: number;
  start: number;
  count: number;
  bytes: number;
  /** The seq of the newest message ever published in this log (`base` before the first). */
  lastSeq: number;
  /**
   * The broker's highest seq when this log was made: its first message is `base + 1`. Seqs are
   * never reused across a topic's logs, so a cursor from a removed log is never mistaken.
   */
  base: number;
}

/** A present member of a presence topic and when its TTL ends. */
interface PresenceEntry {
  member: BrokerPresenceMember;
  /** `userId` and `data` as JSON: a join with other ones is published again. */
  key: string;
  expiresAt: number;
}

interface IdempotencyRecord {
  /** The message id the first publish with the key got. */
  id: string;
  expiresAt: number;
}

// Slots of the removed-topics table (see `removedUpTo`): 16 384 numbers, 128 KB once a topic
// was removed. A collision only costs a reset that was not needed, never a gap.
const REMOVED_SLOTS = 16_384;

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
 * `data` as JSON, encoded once, at publish: what every answer holding the message splices in,
 * so nothing kept can fail to encode later. Throws a TypeError for what JSON cannot carry.
 */
function encode(data: unknown): string {
  let json: string | undefined;
  try {
    json = JSON.stringify(data);
  } catch (error) {
    throw new TypeError(`publish: data must be JSON-serializable (${String(error)})`);
  }
  // `undefined` (and functions) travel as null.
  return json ?? 'null';
}

/** A small string hash (FNV-1a) for the removed-topics table. */
function slotOf(topic: string): number {
  let hash = 0x811c9dc5;
  for (let index = 0; index < topic.length; index += 1) {
    hash ^= topic.charCodeAt(index);
    hash = Math.imul(hash, 0x01000193);
  }
  return (hash >>> 0) % REMOVED_SLOTS;
}

/**
 * The in-memory broker: per-topic history in a ring buffer bounded by count, bytes and age, a
 * broker-wide cap on bytes and topics, ids `<epoch>-<seq>`, wake-ups in process, and an
 * idempotency store with TTL. Right for one process, or several server instances in one process
 * sharing this object; use `@cometkit/redis` across processes.
 */
export function createMemoryBroker(options: MemoryBrokerOptions = {}): MemoryBroker {
  const historySize = positiveInteger('historySize', options.historySize, 100_000);
  const historyMaxBytes = positiveInteger('historyMaxBytes', options.historyMaxBytes, 4_194_304);
  const historyMaxAge = positiveInteger('historyMaxAge', options.historyMaxAge, 300_000);
  const maxBytes = positiveInteger('maxBytes', options.maxBytes, 67_108_864);
  const maxTopics = positiveInteger('maxTopics', options.maxTopics, 100_000);
  const sweepInterval = positiveInteger('sweepInterval', options.sweepInterval, 30_000);
  const maxKeys = positiveInteger('maxIdempotencyKeys', options.maxIdempotencyKeys, 100_000);
  const now = options.now ?? Date.now;
  const epoch = options.epoch ?? randomEpoch();
  if (epoch.length === 0 || epoch.includes('-')) {
    throw new TypeError(`createMemoryBroker: epoch must be non-empty without "-", got "${epoch}"`);
  }
  const prefix = `${epoch}-`;
  // In order of the last publish: the first entry is the topic published to least recently.
  const logs = new Map<string, TopicLog>();
  const listeners = createListenerRegistry();
  // Idempotency records by topic and key. A Map keeps insertion order, so the first keys are
  // the oldest when trimming.
  const records = new Map<string, IdempotencyRecord>();
  const present = new Map<string, Map<string, PresenceEntry>>();
  let closed = false;
  // The highest seq handed out on any topic: a new log starts above it.
  let highestSeq = 0;
  let totalBytes = 0;
  let totalMessages = 0;
  let newestLog: TopicLog | undefined;
  // For each slot, the highest `lastSeq` of a removed log whose topic hashes there. A cursor at
  // or above it cannot have missed a removed log's messages (see `read`).
  let removedUpTo: Float64Array | undefined;

  const sweepTimer = setInterval(sweep, sweepInterval);
  sweepTimer.unref?.();

  const idOf = (seq: number) => `${prefix}${seq}`;

  function newLog(): TopicLog {
    return {
      ids: [],
      times: [],
      sizes: [],
      json: [],
      capacity: Math.min(historySize, 16),
      start: 0,
      count: 0,
      bytes: 0,
      lastSeq: highestSeq,
      base: highestSeq,
    };
  }

  /** The slot of the `index`-th kept message. */
  function slot(log: TopicLog, index: number): number {
    const at = log.start + index;
    return at < log.capacity ? at : at - log.capacity;
  }

  function dropOldest(log: TopicLog): void {
    // Only the JSON can hold on to memory; ids and times are overwritten when the slot is reused.
    log.json[log.start] = '';
    const size = log.sizes[log.start] as number;
    log.bytes -= size;
    totalBytes -= size;
    totalMessages -= 1;
    log.start = log.start + 1 === log.capacity ? 0 : log.start + 1;
    log.count -= 1;
  }

  /** Forgets `topic`'s log, remembering how far it went so that no cursor misses its messages. */
  function remove(topic: string, log: TopicLog): void {
    while (log.count > 0) dropOldest(log);
    logs.delete(topic);
    if (newestLog === log) newestLog = undefined;
    if (log.lastSeq === log.base) return; // never published to: nothing to miss
    removedUpTo ??= new Float64Array(REMOVED_SLOTS);
    const at = slotOf(topic);
    if ((removedUpTo[at] as number) < log.lastSeq) removedUpTo[at] = log.lastSeq;
  }

  /** True when no removed log of `topic` had a message after `seq`. */
  function nothingRemovedAfter(topic: string, seq: number): boolean {
    return removedUpTo === undefined || (removedUpTo[slotOf(topic)] as number) <= seq;
  }

  /** Doubles a full ring (up to `historySize`), laying its messages out from slot 0 again. */
  function grow(log: TopicLog): void {
    const capacity = Math.min(historySize, log.capacity * 2);
    if (log.start !== 0) {
      const order = <T>(list: T[]) => list.slice(log.start).concat(list.slice(0, log.start));
      log.ids = order(log.ids);
      log.times = order(log.times);
      log.sizes = order(log.sizes);
      log.json = order(log.json);
      log.start = 0;
    }
    log.capacity = capacity;
  }

  function trimByAge(log: TopicLog, time: number): void {
    const oldest = time - historyMaxAge;
    while (log.count > 0 && (log.times[log.start] as number) < oldest) dropOldest(log);
  }

  /** Trims every topic by age and removes the ones left empty. */
  function sweep(): void {
    const time = now();
    for (const [topic, log] of logs) {
      trimByAge(log, time);
      if (log.count === 0) remove(topic, log);
    }
  }

  /** Over the broker-wide byte cap: the least recently published topics give up their oldest. */
  function enforceMaxBytes(keep: TopicLog): void {
    for (const [topic, log] of logs) {
      if (totalBytes <= maxBytes) return;
      // The topic just published to keeps its newest message whatever happens.
      while (totalBytes > maxBytes && log.count > (log === keep ? 1 : 0)) dropOldest(log);
      if (log.count === 0) remove(topic, log);
    }
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

  /**
   * Appends to `topic`'s history within the bounds, wakes its listeners and answers the new id.
   * Throws a TypeError for data that JSON cannot carry, before anything changes.
   */
  function append(topic: string, data: unknown): string {
    const json = encode(data);
    const size = Buffer.byteLength(json);
    let log = logs.get(topic);
    if (!log) {
      if (logs.size >= maxTopics) {
        const [oldTopic, oldLog] = logs.entries().next().value as [string, TopicLog];
        remove(oldTopic, oldLog);
      }
      log = newLog();
      logs.set(topic, log);
    } else if (log !== newestLog) {
      // Moved to the end of the Map's order: the most recently published topic.
      logs.delete(topic);
      logs.set(topic, log);
    }
    newestLog = log;
    const time = now();
    trimByAge(log, time);
    while (log.count > 0 && log.bytes + size > historyMaxBytes) dropOldest(log);
    if (log.count === log.capacity) {
      if (log.capacity < historySize) grow(log);
      else dropOldest(log);
    }
    log.lastSeq += 1;
    if (log.lastSeq > highestSeq) highestSeq = log.lastSeq;
    const id = prefix + log.lastSeq;
    const at = slot(log, log.count);
    log.ids[at] = id;
    log.times[at] = time;
    log.sizes[at] = size;
    log.json[at] = json;
    log.count += 1;
    log.bytes += size;
    totalBytes += size;
    totalMessages += 1;
    if (totalBytes > maxBytes) enforceMaxBytes(log);
    listeners.notify(topic);
    return id;
  }

  function assertOpen(): void {
    if (closed) throw new Error('memory broker is closed');
  }

  /** The kept messages `from` to `to`; with `json` (for reads: the server answers it as is). */
  function messagesOf(
    topic: string,
    log: TopicLog,
    from: number,
    to: number,
    withJson: boolean,
  ): BrokerMessage[] {
    const messages: BrokerMessage[] = [];
    for (let index = from; index < to; index += 1) {
      const at = slot(log, index);
      const id = log.ids[at] as string;
      const json = log.json[at] as string;
      // Only the JSON is kept (what `historyMaxBytes` counts): `data` is decoded when asked for,
      // and the server, which answers `json` as is, never asks.
      messages.push(
        withJson
          ? {
              topic,
              id,
              json,
              get data() {
                return JSON.parse(json);
              },
            }
          : { topic, id, data: JSON.parse(json) },
      );
    }
    return messages;
  }

  /** The newest id of `topic` (its "empty" position when nothing is kept). */
  function positionOf(topic: string): string {
    const log = logs.get(topic);
    // No history (never published to, or removed): the highest seq, which a later log of this
    // topic starts from.
    if (!log) return idOf(highestSeq);
    trimByAge(log, now());
    return log.count > 0 ? (log.ids[slot(log, log.count - 1)] as string) : idOf(log.lastSeq);
  }

  /** Removes the expired members of presence `topic`, publishing a leave for each. */
  function sweepPresence(topic: string): void {
    const entries = present.get(topic);
    if (!entries) return;
    const time = now();
    for (const [id, entry] of entries) {
      if (entry.expiresAt > time) continue;
      entries.delete(id);
      append(topic, { event: 'leave', member: entry.member });
    }
    if (entries.size === 0) present.delete(topic);
  }

  // Each method is one synchronous step: the entry and its join or leave change together.
  const presence: BrokerPresence = {
    async join(topic, member, ttlMs) {
      assertOpen();
      // An expired member that comes back leaves first, as on Redis.
      sweepPresence(topic);
      let entries = present.get(topic);
      if (!entries) {
        entries = new Map();
        present.set(topic, entries);
      }
      const key = JSON.stringify([member.userId, member.data]);
      const entry = entries.get(member.id);
      const expiresAt = now() + ttlMs;
      if (entry && entry.key === key) {
        entry.expiresAt = expiresAt;
        return;
      }
      entries.set(member.id, { member, key, expiresAt });
      append(topic, { event: 'join', member });
    },
    async leave(topic, memberId) {
      assertOpen();
      const entries = present.get(topic);
      const entry = entries?.get(memberId);
      if (!entries || !entry) return;
      entries.delete(memberId);
      if (entries.size === 0) present.delete(topic);
      append(topic, { event: 'leave', member: entry.member });
    },
    async sweep(topic) {
      assertOpen();
      sweepPresence(topic);
    },
    async snapshot(topic) {
      assertOpen();
      sweepPresence(topic);
      const members = [...(present.get(topic)?.values() ?? [])].map((entry) => entry.member);
      return { members, position: positionOf(topic) };
    },
  };

  return {
    epoch,

    // Not `async`: a burst of publishes makes one promise each, not three (less GC). The
    // topic is not validated here: the server checks it once at its edge.
    publish(topic, data, options?: BrokerPublishOptions) {
      if (closed) return Promise.reject(new Error('memory broker is closed'));
      try {
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
      } catch (error) {
        return Promise.reject(error);
      }
    },

    async read(topic, cursor, limit): Promise<BrokerReadResult> {
      assertOpen();
      if (cursor === undefined) {
        return { messages: [], position: positionOf(topic), reset: false, more: false };
      }
      const log = logs.get(topic);
      if (!log) {
        // No history (never published to, or removed): the position is the highest seq, which
        // a later log of this topic starts from.
        const position = idOf(highestSeq);
        const seq = seqOf(cursor);
        const missed = seq === undefined || seq > highestSeq || !nothingRemovedAfter(topic, seq);
        // A cursor still good stays as it is: a topic nobody publishes to keeps its position.
        return missed
          ? { messages: [], position, reset: true, more: false }
          : { messages: [], position: cursor, reset: false, more: false };
      }
      trimByAge(log, now());
      const position =
        log.count > 0 ? (log.ids[slot(log, log.count - 1)] as string) : idOf(log.lastSeq);
      let seq = seqOf(cursor);
      const firstKept = firstSeq(log);
      // A cursor from before this log (a handshake while the topic had none, or the last
      // message of a removed log) reads it from its start when nothing was dropped from it and
      // no removed log had messages after the cursor.
      if (
        seq !== undefined &&
        seq < log.base &&
        firstKept - 1 === log.base &&
        nothingRemovedAfter(topic, seq)
      ) {
        seq = log.base;
      }
      // Unknown epoch (another process) or history trimmed past the cursor: resume just before
      // the oldest message kept, so nothing still here is skipped. A position this log never
      // reached: resume from the newest.
      if (seq === undefined || seq < firstKept - 1) {
        return { messages: [], position: idOf(firstKept - 1), reset: true, more: false };
      }
      if (seq > log.lastSeq) return { messages: [], position, reset: true, more: false };
      if (seq === log.lastSeq) return { messages: [], position, reset: false, more: false };
      const from = seq - firstKept + 1;
      const to = Math.min(log.count, from + Math.max(0, limit));
      const messages = messagesOf(topic, log, from, to, true);
      const last = messages.at(-1);
      return {
        messages,
        position: last ? last.id : cursor,
        reset: false,
        more: to < log.count,
      };
    },

    async recent(topic, limit, recentOptions) {
      assertOpen();
      const log = logs.get(topic);
      if (!log) return { messages: [], position: idOf(highestSeq) };
      const time = now();
      trimByAge(log, time);
      let count = Math.min(log.count, Math.max(0, Math.floor(limit)));
      const maxAge = recentOptions?.maxAgeMs;
      if (maxAge !== undefined) {
        const oldest = time - maxAge;
        while (count > 0 && (log.times[slot(log, log.count - count)] as number) < oldest) {
          count -= 1;
        }
      }
      return {
        messages: messagesOf(topic, log, log.count - count, log.count, false),
        position: idOf(log.lastSeq),
      };
    },

    listen(topics, onPublish) {
      assertOpen();
      return listeners.add(topics, onPublish);
    },

    presence,

    listenerCount() {
      return listeners.size();
    },

    usage() {
      return { topics: logs.size, messages: totalMessages, bytes: totalBytes };
    },

    async close() {
      closed = true;
      clearInterval(sweepTimer);
      logs.clear();
      listeners.clear();
      records.clear();
      present.clear();
    },
  };
}
