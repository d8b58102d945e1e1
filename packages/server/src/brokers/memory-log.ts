/**
 * One topic's history in the memory broker: the ring buffer layout and the pure steps on it
 * (slots, growth, the wire form written once at publish into pages, reading messages and wire
 * slices out), the JSON encoding done once at publish, and the hash of the removed-topics table.
 */
import type { BrokerMessage } from '../broker';

/**
 * One topic's history: a ring buffer of parallel arrays, the numbers in typed arrays (no object
 * per message, and nothing in them for the garbage collector to scan). Slot
 * `(start + i) % capacity` holds the i-th kept message; seqs are consecutive, so the i-th one's
 * seq is `lastSeq - count + 1 + i`. The arrays grow by doubling up to `historySize`, so a quiet
 * topic does not pay for a full ring.
 *
 * A message is kept only as the bytes of its wire form, `{"topic":…,"id":…,"data":…}`, written
 * once at publish into the log's pages (`Buffer`s, off the JS heap: a history of 20 000 messages
 * is nothing for the garbage collector to copy). Consecutive messages of a page are separated by
 * a comma, so the messages of one answer are a slice or two of pages, written to the socket as
 * they are (see {@link wireOf}); a read that wants values decodes them (see {@link messagesOf}).
 */
export interface TopicLog {
  /** When each message was published (ms, the broker's clock). */
  times: Float64Array;
  /** Bytes of each message's JSON (what `historyMaxBytes` counts). */
  sizes: Int32Array;
  /** The page holding each message's wire form (undefined once dropped). */
  pages: (Buffer | undefined)[];
  /** Where each message's wire form starts in its page. */
  starts: Int32Array;
  /** Bytes of each message's wire form. */
  wires: Int32Array;
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
  /** The page messages are appended to, and the bytes used in it. */
  page: Buffer | undefined;
  used: number;
  /** `{"topic":<topic as JSON>,"id":"<epoch>-` as bytes: the start of every wire form. */
  head: Buffer;
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

/** The smallest and largest page (a larger message gets a page of its own size). */
const MIN_PAGE = 256;
const MAX_PAGE = 65_536;
/** `","data":`, after an id's digits: what comes before a message's data (its closing `}` after). */
const DATA_OPEN = Buffer.from('","data":', 'latin1');
const COMMA = 0x2c;
const CLOSE = 0x7d;

/** The start of `topic`'s wire forms, `{"topic":…,"id":"<prefix>`, as bytes. */
export function headOf(topic: string, prefix: string): Buffer {
  // JSON.stringify escapes what JSON must; the id's quotes are opened here, closed after it.
  return Buffer.from(
    `{"topic":${JSON.stringify(topic)},"id":${JSON.stringify(prefix).slice(0, -1)}`,
  );
}

/** `Buffer`'s own writers (what `write` calls after parsing its arguments), on every publish. */
interface Writers {
  latin1Write(text: string, offset: number): number;
  utf8Write(text: string, offset: number): number;
}

/** An empty log of `topic` whose first message will be `highestSeq + 1`. */
export function newLog(highestSeq: number, historySize: number, head: Buffer): TopicLog {
  const capacity = Math.min(historySize, 16);
  return {
    times: new Float64Array(capacity),
    sizes: new Int32Array(capacity),
    pages: new Array<Buffer | undefined>(capacity).fill(undefined),
    starts: new Int32Array(capacity),
    wires: new Int32Array(capacity),
    capacity,
    start: 0,
    count: 0,
    bytes: 0,
    lastSeq: highestSeq,
    base: highestSeq,
    page: undefined,
    used: 0,
    head,
  };
}

/**
 * Writes the wire form of the message whose seq is `digits` (its data as `json`, `size` bytes of
 * UTF-8) to the log's page, in slot `at`: a new page when it does not fit (twice the last one,
 * up to {@link MAX_PAGE}, or the message's own size).
 */
export function writeWire(
  log: TopicLog,
  at: number,
  digits: string,
  json: string,
  size: number,
): void {
  const wire = log.head.length + digits.length + DATA_OPEN.length + size + 1;
  let page = log.page;
  let offset = log.used;
  if (page === undefined || offset + 1 + wire > page.length) {
    const next = page === undefined ? MIN_PAGE : Math.min(MAX_PAGE, page.length * 2);
    page = Buffer.allocUnsafe(Math.max(next, wire));
    log.page = page;
    offset = 0;
  } else {
    page[offset] = COMMA;
    offset += 1;
  }
  log.pages[at] = page;
  log.starts[at] = offset;
  log.wires[at] = wire;
  // No text joined for the write: on every publish, it was as much garbage as the message.
  page.set(log.head, offset);
  offset += log.head.length;
  for (let index = 0; index < digits.length; index += 1) {
    page[offset + index] = digits.charCodeAt(index);
  }
  offset += digits.length;
  page.set(DATA_OPEN, offset);
  offset += DATA_OPEN.length;
  const writers = page as Buffer & Writers;
  offset +=
    size === json.length ? writers.latin1Write(json, offset) : writers.utf8Write(json, offset);
  page[offset] = CLOSE;
  log.used = offset + 1;
}

/** The slot of the `index`-th kept message. */
export function slot(log: TopicLog, index: number): number {
  const at = log.start + index;
  return at < log.capacity ? at : at - log.capacity;
}

/** Doubles a full ring (up to `historySize`), laying its messages out from slot 0 again. */
export function grow(log: TopicLog, historySize: number): void {
  const capacity = Math.min(historySize, log.capacity * 2);
  const { start } = log;
  /** `list` in ring order from slot 0, in a typed array of the new capacity. */
  const regrow = <T extends Float64Array | Int32Array>(list: T, made: T): T => {
    made.set(list.subarray(start));
    made.set(list.subarray(0, start), list.length - start);
    return made;
  };
  log.times = regrow(log.times, new Float64Array(capacity));
  log.sizes = regrow(log.sizes, new Int32Array(capacity));
  log.starts = regrow(log.starts, new Int32Array(capacity));
  log.wires = regrow(log.wires, new Int32Array(capacity));
  const pages = log.pages.slice(start).concat(log.pages.slice(0, start));
  pages.length = capacity;
  log.pages = pages.fill(undefined, log.capacity);
  log.start = 0;
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

/** The JSON of the data of the message in slot `at`, decoded from its wire form. */
function jsonAt(log: TopicLog, at: number): string {
  const page = log.pages[at] as Buffer;
  const end = (log.starts[at] as number) + (log.wires[at] as number) - 1;
  const size = log.sizes[at] as number;
  return page.toString('utf8', end - size, end);
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
  // Kept messages have consecutive seqs: an id is made when read, not kept per message.
  const first = firstSeq(log);
  for (let index = from; index < to; index += 1) {
    const at = slot(log, index);
    const id = prefix + (first + index);
    const json = jsonAt(log, at);
    messages.push(
      withJson
        ? new KeptMessage(topic, id, json, log.sizes[at] as number)
        : { topic, id, data: JSON.parse(json) },
    );
  }
  return messages;
}

/**
 * The wire forms of the kept messages `from` onwards (before `to`) that fit in `budget` bytes,
 * each counted with one byte more, for the comma after it (the first always goes in): the
 * slices of pages holding them, in order (a comma goes between two slices), how many, and
 * their bytes so counted.
 */
export function wireOf(
  log: TopicLog,
  from: number,
  to: number,
  budget: number,
): { chunks: Buffer[]; count: number; bytes: number } {
  const chunks: Buffer[] = [];
  let bytes = 0;
  let index = from;
  let cut = false;
  while (index < to && !cut) {
    const at = slot(log, index);
    const page = log.pages[at] as Buffer;
    let endAt = -1;
    // The messages that follow in the same page are contiguous: one slice for all of them.
    while (index < to) {
      const next = slot(log, index);
      if (log.pages[next] !== page) break;
      const size = (log.wires[next] as number) + 1;
      if (index > from && bytes + size > budget) {
        cut = true;
        break;
      }
      bytes += size;
      endAt = next;
      index += 1;
    }
    if (endAt >= 0) {
      const end = (log.starts[endAt] as number) + (log.wires[endAt] as number);
      chunks.push(page.subarray(log.starts[at] as number, end));
    }
  }
  return { chunks, count: index - from, bytes };
}
