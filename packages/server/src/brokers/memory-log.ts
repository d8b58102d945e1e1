/**
 * One topic's history in the memory broker: the ring buffer layout and the pure steps on it
 * (slots, growth, reading messages out), the JSON encoding done once at publish, and the hash of
 * the removed-topics table.
 */
import type { BrokerMessage } from '../broker';

/**
 * One topic's history: a ring buffer of parallel arrays (no object per message, so a burst
 * leaves the garbage collector less to copy). Slot `(start + i) % capacity` holds the i-th
 * kept message; seqs are consecutive, so the i-th one's seq is `lastSeq - count + 1 + i`.
 * The arrays grow by doubling up to `historySize`, so a quiet topic does not pay for a full ring.
 */
export interface TopicLog {
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

// Slots of the removed-topics table (see `removedUpTo`): 16 384 numbers, 128 KB once a topic
// was removed. A collision only costs a reset that was not needed, never a gap.
export const REMOVED_SLOTS = 16_384;

/**
 * `data` as JSON, encoded once, at publish: what every answer holding the message splices in,
 * so nothing kept can fail to encode later. Throws a TypeError for what JSON cannot carry.
 */
export function encode(data: unknown): string {
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
export function slotOf(topic: string): number {
  let hash = 0x811c9dc5;
  for (let index = 0; index < topic.length; index += 1) {
    hash ^= topic.charCodeAt(index);
    hash = Math.imul(hash, 0x01000193);
  }
  return (hash >>> 0) % REMOVED_SLOTS;
}

/** An empty log whose first message will be `highestSeq + 1`. */
export function newLog(highestSeq: number, historySize: number): TopicLog {
  return {
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
export function slot(log: TopicLog, index: number): number {
  const at = log.start + index;
  return at < log.capacity ? at : at - log.capacity;
}

/** Doubles a full ring (up to `historySize`), laying its messages out from slot 0 again. */
export function grow(log: TopicLog, historySize: number): void {
  const capacity = Math.min(historySize, log.capacity * 2);
  if (log.start !== 0) {
    const order = <T>(list: T[]) => list.slice(log.start).concat(list.slice(0, log.start));
    log.times = order(log.times);
    log.sizes = order(log.sizes);
    log.json = order(log.json);
    log.start = 0;
  }
  log.capacity = capacity;
}

/** The seq of the oldest kept message (`lastSeq + 1` when none is kept). */
export function firstSeq(log: TopicLog): number {
  return log.lastSeq - log.count + 1;
}

/**
 * A kept message as a read hands it out: only its JSON is kept (what `historyMaxBytes` counts),
 * so `data` is decoded when asked for, and the server, which answers `json` as is, never asks.
 * A class, not an object literal with a getter: a read of 1 000 messages makes 1 000 of them,
 * and a literal with an accessor is built through a slow runtime path each time.
 */
class KeptMessage implements BrokerMessage {
  constructor(
    readonly topic: string,
    readonly id: string,
    readonly json: string,
    readonly bytes: number,
  ) {}

  get data(): unknown {
    return JSON.parse(this.json);
  }
}

/** The kept messages `from` to `to`; with `json` (for reads: the server answers it as is). */
export function messagesOf(
  topic: string,
  log: TopicLog,
  from: number,
  to: number,
  withJson: boolean,
  prefix: string,
): BrokerMessage[] {
  const messages: BrokerMessage[] = [];
  // Kept messages have consecutive seqs: an id is made when read, not kept per message (a
  // string that lives as long as the history costs the young-generation GC a copy or two per
  // message; one made per read dies young).
  const first = firstSeq(log);
  for (let index = from; index < to; index += 1) {
    const at = slot(log, index);
    const id = prefix + (first + index);
    const json = log.json[at] as string;
    messages.push(
      withJson
        ? new KeptMessage(topic, id, json, log.sizes[at] as number)
        : { topic, id, data: JSON.parse(json) },
    );
  }
  return messages;
}
