/**
 * Reading topics after their cursors, the read cache that shares one broker read between the
 * requests one publish wakes, and the encoding of what was read into answers (with one shared
 * body for the common woken one-topic poll). Answers splice in each message's JSON as the
 * broker keeps it (encoded once, at publish) and stop at `maxAnswerBytes`.
 */
import type { Cursors, PollAnswer, TopicErrorBody } from '@cometkit/core/protocol';
import type { Broker, BrokerMessage, BrokerReadResult } from '../broker';
import { type EncodedJson, encodeJson, sizedJson } from '../http';
import type { EngineContext } from './context';
import type { ValidRewind } from './request';
import { answerWire, type WireAnswer } from './wire';

/**
 * Shares `broker.read(topic, cursor)` between requests woken together: when one publish wakes
 * 1 000 held polls that all sit at the same cursor, the broker is read once, not 1 000 times.
 * An entry lives until the next event-loop turn, or until a publish on its topic
 * (`invalidate`, called by every held request's broker listener), so nobody reads a stale
 * copy: whoever reads through the cache is itself listening to that topic.
 */
export interface ReadCache {
  read(topic: string, cursor: string | undefined): Promise<BrokerReadResult>;
  /**
   * The same read answered at once, through the broker's `readNow`; undefined when the broker
   * has none (it reads with I/O). Throws what the broker throws.
   */
  readNow(topic: string, cursor: string): BrokerReadResult | undefined;
  /**
   * {@link answerWire} shared as a read is: the polls one publish wakes at one cursor get one
   * answer body. Not kept when undefined.
   */
  answerWire(context: EngineContext, topic: string, cursor: string): WireAnswer | undefined;
  invalidate(topic: string): void;
}

/** Makes a {@link ReadCache} over `broker`. */
export function createReadCache(broker: Broker, limit: number): ReadCache {
  const entries = new Map<string, Map<string, Promise<BrokerReadResult>>>();
  const now = new Map<string, Map<string, BrokerReadResult>>();
  const wired = new Map<string, Map<string, WireAnswer | undefined>>();
  let sweeping = false;
  const sweep = () => {
    sweeping = false;
    entries.clear();
    now.clear();
    wired.clear();
  };
  /** `topic` at `cursor` from `cache`, or `make`'s, kept until the next turn. */
  function through<T>(
    cache: Map<string, Map<string, T>>,
    topic: string,
    cursor: string,
    make: () => T,
  ): T {
    let byCursor = cache.get(topic);
    const cached = byCursor?.get(cursor);
    if (cached !== undefined) return cached;
    const made = make();
    if (!byCursor) {
      byCursor = new Map();
      cache.set(topic, byCursor);
    }
    byCursor.set(cursor, made);
    if (!sweeping) {
      sweeping = true;
      setImmediate(sweep);
    }
    return made;
  }
  return {
    read(topic, cursor) {
      if (cursor === undefined) return broker.read(topic, cursor, limit);
      return through(entries, topic, cursor, () => {
        const pending = broker.read(topic, cursor, limit);
        // A failed read is not kept: the next reader tries again.
        pending.catch(() => {
          const byCursor = entries.get(topic);
          if (byCursor?.get(cursor) === pending) byCursor.delete(cursor);
        });
        return pending;
      });
    },
    readNow(topic, cursor) {
      const readNow = broker.readNow;
      // Not when a wrapper replaced `read` (see `Broker.readNow`).
      if (readNow === undefined || readNow.of !== broker.read) return undefined;
      return through(now, topic, cursor, () => readNow(topic, cursor, limit));
    },
    answerWire(context, topic, cursor) {
      return through(wired, topic, cursor, () => answerWire(context, topic, cursor));
    },
    invalidate(topic) {
      entries.delete(topic);
      now.delete(topic);
      wired.delete(topic);
    },
  };
}

/**
 * A message encoded for the wire: the parts of its JSON text as it goes into an answer, built
 * from the JSON the broker keeps (encoded once, at publish), so an answer never encodes message
 * data again. The parts are joined with the rest of the answer in one pass
 * ({@link withMessages}): a text per message would be a rope of seven pieces, allocated per
 * message and copied again when the answer is flattened.
 */
export interface EncodedMessage {
  topic: string;
  id: string;
  /** `data` as JSON text (the legacy answer carries it alone). */
  data: string;
  /** `{"topic":…,"id":`, shared by the messages of a topic. */
  topicHead: string;
  /** `id` as JSON text. */
  idJson: string;
  /** The UTF-8 byte length of the wire message `{"topic", "id", "data"}`. */
  bytes: number;
}

/** The bytes of `,"data":` and the closing `}` around a message's data. */
const DATA_BYTES = ',"data":}'.length;

/**
 * `text` as a JSON string when it is printable ASCII with nothing to escape (ids, positions and
 * most topic names), else undefined. Its UTF-8 bytes are then its length. A loop over the
 * characters, not `JSON.stringify` or `Buffer.byteLength`: on the path from a publish to the
 * answer, which after an idle moment runs cold, every builtin it touches costs microseconds.
 */
export function asciiJson(text: string): string | undefined {
  for (let index = 0; index < text.length; index += 1) {
    const code = text.charCodeAt(index);
    if (code < 0x20 || code > 0x7e || code === 0x22 || code === 0x5c) return undefined;
  }
  return `"${text}"`;
}

/** `text` as a JSON string, and its UTF-8 bytes. */
export function jsonOf(text: string): { json: string; bytes: number } {
  const ascii = asciiJson(text);
  if (ascii !== undefined) return { json: ascii, bytes: ascii.length };
  const json = JSON.stringify(text);
  return { json, bytes: Buffer.byteLength(json) };
}

/** The last topic's `{"topic":…,"id":`, its topic as JSON, and their bytes. */
let lastHead = { topic: '', text: '{"topic":"","id":', bytes: 17, json: '""', jsonBytes: 2 };

export function topicHead(topic: string): typeof lastHead {
  if (lastHead.topic !== topic) {
    const { json, bytes } = jsonOf(topic);
    lastHead = { topic, text: `{"topic":${json},"id":`, bytes: bytes + 15, json, jsonBytes: bytes };
  }
  return lastHead;
}

/** The result of reading every topic after its cursor. */
export interface ReadResult {
  messages: EncodedMessage[];
  /** The position of every topic read, after `messages`. */
  cursors: Map<string, string>;
  resets: string[];
  /**
   * True when more messages follow what was read (a topic filled its batch, or the answer
   * reached `maxAnswerBytes`): the client should read again at once.
   */
  more: boolean;
}

/** Nothing read (the answer of a poll whose every topic was refused). */
export const NOTHING_READ: ReadResult = {
  messages: [],
  cursors: new Map(),
  resets: [],
  more: false,
};

const NO_REWIND: ReadonlyMap<string, ValidRewind> = new Map();

/**
 * `message` encoded for the wire, or undefined when its data cannot be encoded (only a custom
 * broker that keeps no `json` can hand out such a message): it is then skipped, and logged,
 * rather than fail every answer that would hold it.
 */
export function encodeMessage(
  context: EngineContext,
  message: BrokerMessage,
): EncodedMessage | undefined {
  let data = message.json;
  if (data === undefined) {
    try {
      data = JSON.stringify(message.data) ?? 'null';
    } catch (error) {
      context.options.log({
        level: 'error',
        event: 'message.unencodable',
        message: 'a stored message cannot be encoded as JSON: skipped',
        topic: message.topic,
        id: message.id,
        error,
      });
      return undefined;
    }
  }
  const head = topicHead(message.topic);
  // No object per id (an answer encodes up to `batchLimit` of them).
  const ascii = asciiJson(message.id);
  const idJson = ascii ?? JSON.stringify(message.id);
  // Counted from the parts, not from a joined text (which would be flattened once here and
  // copied again when the answer is).
  const bytes =
    head.bytes +
    (ascii === undefined ? Buffer.byteLength(idJson) : ascii.length) +
    DATA_BYTES +
    (data === message.json && message.bytes !== undefined
      ? message.bytes
      : Buffer.byteLength(data));
  return {
    topic: message.topic,
    id: message.id,
    data,
    topicHead: head.text,
    idJson,
    bytes,
  };
}

/**
 * A rewound topic's `result` keeping only its newest messages that fit in `room` bytes (at least
 * one when `first`, as {@link take} would), so that its position after them stays right: a
 * rewind cut short loses its oldest messages, never a live one.
 */
function newestThatFit<T extends Pick<BrokerReadResult, 'messages'>>(
  context: EngineContext,
  result: T,
  room: number,
  first: boolean,
): T {
  let bytes = 0;
  let from = result.messages.length;
  while (from > 0) {
    const encoded = encodeMessage(context, result.messages[from - 1] as BrokerMessage);
    const size = encoded === undefined ? 0 : encoded.bytes + 1;
    if (bytes + size > room && !(first && from === result.messages.length)) break;
    bytes += size;
    from -= 1;
  }
  return from === 0 ? result : { ...result, messages: result.messages.slice(from) };
}

/**
 * Adds the messages of one topic's read `result` to `into` while the answer stays within
 * `budget` bytes (`used` so far; the answer's first message always goes in, so a client always
 * moves on). Returns the topic's position after what was taken and whether the budget cut it.
 */
function take(
  context: EngineContext,
  result: BrokerReadResult,
  cursor: string | undefined,
  into: EncodedMessage[],
  used: { bytes: number },
  budget: number,
): { position: string; cut: boolean } {
  if (result.messages.length === 0) return { position: result.position, cut: false };
  let passed = cursor;
  for (const message of result.messages) {
    const encoded = encodeMessage(context, message);
    if (encoded !== undefined) {
      const size = encoded.bytes + 1;
      if (into.length > 0 && used.bytes + size > budget) {
        // Nothing of this topic taken: its position stays where the request had it.
        return { position: passed ?? result.position, cut: true };
      }
      used.bytes += size;
      into.push(encoded);
    }
    passed = message.id;
  }
  return { position: result.position, cut: false };
}

/**
 * Reads every topic after its cursor (a missing cursor reads the current position), at most
 * `maxAnswerBytes` of messages in all. A topic without a cursor in `rewind` starts with its
 * recent messages instead (at most `batchLimit`, and the newest that fit the byte budget), and
 * its position is the one after them: whoever reads is listening already, so what is published
 * later is read from there, with no gap and no repeat. `woken` reads go through the read cache:
 * only a request listening to its topics may use it.
 */
export async function readTopics(
  context: EngineContext,
  topics: readonly string[],
  cursors: ReadonlyMap<string, string>,
  woken = false,
  rewind: ReadonlyMap<string, ValidRewind> = NO_REWIND,
): Promise<ReadResult> {
  const { batchLimit, maxAnswerBytes } = context.options;
  const results = await Promise.all(
    topics.map((topic): Promise<BrokerReadResult> => {
      const cursor = cursors.get(topic);
      const back = cursor === undefined ? rewind.get(topic) : undefined;
      if (back !== undefined) {
        // A presence topic starts with its members (a sync), not with a rewind.
        const sync = context.presence?.withSync(topic, undefined, undefined);
        if (sync) return sync;
        const count = Math.min(back.count ?? batchLimit, batchLimit);
        const options = back.since === undefined ? undefined : { maxAgeMs: back.since };
        return context.broker
          .recent(topic, count, options)
          .then(({ messages, position }) => ({ messages, position, reset: false, more: false }));
      }
      return readTopic(context, topic, cursor, woken);
    }),
  );
  const messages: EncodedMessage[] = [];
  const positions = new Map<string, string>();
  const resets: string[] = [];
  const used = { bytes: 0 };
  let more = false;
  let spent = false;
  topics.forEach((topic, index) => {
    let result = results[index];
    if (!result) return;
    const cursor = cursors.get(topic);
    if (cursor === undefined && rewind.has(topic) && !spent) {
      result = newestThatFit(context, result, maxAnswerBytes - used.bytes, messages.length === 0);
    }
    if (spent && result.messages.length > 0) {
      // The budget is spent: this topic's messages wait for the next read.
      positions.set(topic, cursor ?? result.position);
      return;
    }
    const { position, cut } = take(context, result, cursor, messages, used, maxAnswerBytes);
    positions.set(topic, position);
    if (cut) spent = true;
    if (cut || result.more || result.messages.length >= batchLimit) more = true;
    if (result.reset) resets.push(topic);
  });
  return { messages, cursors: positions, resets, more };
}

/**
 * Reads one topic after `cursor` (through the read cache when `woken`). A presence topic that
 * starts over (a handshake, a reset) starts with a `sync` of its members instead.
 */
export async function readTopic(
  context: EngineContext,
  topic: string,
  cursor: string | undefined,
  woken: boolean,
): Promise<BrokerReadResult> {
  const presence = context.presence;
  const handshake = presence?.withSync(topic, cursor, undefined);
  if (handshake) return handshake;
  const result = await (woken
    ? context.reads.read(topic, cursor)
    : context.broker.read(topic, cursor, context.options.batchLimit));
  return (result.reset && presence?.withSync(topic, cursor, result)) || result;
}

/**
 * The JSON text of an object with `head`'s fields, then `"messages"` (their parts, see
 * {@link EncodedMessage}), then `tail`'s fields: answers, events and frames splice the encoded
 * messages in instead of encoding them again, in one join (one flat text, one copy).
 */
export function withMessages(
  head: Record<string, unknown>,
  messages: readonly EncodedMessage[],
  tail: Record<string, unknown>,
): string {
  const start = JSON.stringify(head);
  const end = JSON.stringify(tail);
  const parts: string[] = [`${start.slice(0, -1)}${start.length > 2 ? ',' : ''}"messages":[`];
  pushMessages(parts, messages);
  parts.push(end.length > 2 ? `],${end.slice(1)}` : ']}');
  return parts.join('');
}

/** The parts of `messages`, comma-separated (see {@link EncodedMessage}). */
function pushMessages(parts: string[], messages: readonly EncodedMessage[]): void {
  for (let index = 0; index < messages.length; index += 1) {
    const message = messages[index] as EncodedMessage;
    if (index > 0) parts.push(',');
    parts.push(message.topicHead, message.idJson, ',"data":', message.data, '}');
  }
}

/** The version 1 answer for `read` (and the refusals), as JSON text. */
export function encodeAnswer(
  read: ReadResult,
  errors: ReadonlyMap<string, TopicErrorBody>,
): string {
  const tail: PollAnswer = { cursors: Object.fromEntries(read.cursors) as Cursors };
  if (read.resets.length > 0) tail.resets = read.resets;
  if (errors.size > 0) tail.errors = Object.fromEntries(errors);
  if (read.messages.length === 0) return JSON.stringify(tail);
  return withMessages({}, read.messages, tail as Record<string, unknown>);
}

/** The legacy answer for one message: `{"topic", "data"}`. */
export function encodeLegacy(message: EncodedMessage): string {
  return `{"topic":${JSON.stringify(message.topic)},"data":${message.data}}`;
}

/**
 * `{"messages":[…],"cursors":{topic:position}}` for one topic, written out part by part with its
 * byte length counted from the parts (`messagesBytes`: each message's bytes plus one, as
 * {@link take} counts them): the answer of nearly every woken poll, without `JSON.stringify`,
 * a `Map` or `Buffer.byteLength` on the way.
 */
function encodeMessagesAnswer(
  topic: string,
  position: string,
  messages: readonly EncodedMessage[],
  messagesBytes: number,
): EncodedJson {
  const head = topicHead(topic);
  const at = jsonOf(position);
  const parts = ['{"messages":['];
  pushMessages(parts, messages);
  parts.push('],"cursors":{', head.json, ':', at.json, '}}');
  // '{"messages":[' 13, the commas between messages (counted one per message), '],"cursors":{'
  // 13, ':' and '}}' 3.
  const bytes = 13 + messagesBytes - 1 + 13 + head.jsonBytes + at.bytes + 3;
  return sizedJson(parts.join(''), bytes);
}

// One serialized body per broker read result: the held polls one publish wakes at the same
// cursor share that result (through the read cache), and so get the same bytes, built once.
// Keyed weakly: the cache drops its results after the turn, and the bodies go with them.
const encoded = new WeakMap<BrokerReadResult, EncodedJson>();

/**
 * The answer body for a one-topic poll at `cursor` woken with `result` (messages or a reset),
 * within `maxAnswerBytes`.
 */
export function encodeWoken(
  context: EngineContext,
  topic: string,
  cursor: string,
  result: BrokerReadResult,
): EncodedJson {
  let body = encoded.get(result);
  if (body === undefined) {
    const messages: EncodedMessage[] = [];
    const used = { bytes: 0 };
    const { position } = take(
      context,
      result,
      cursor,
      messages,
      used,
      context.options.maxAnswerBytes,
    );
    if (!result.reset && messages.length > 0) {
      body = encodeMessagesAnswer(topic, position, messages, used.bytes);
      encoded.set(result, body);
      return body;
    }
    const read: ReadResult = {
      messages,
      cursors: new Map([[topic, position]]),
      resets: result.reset ? [topic] : [],
      more: false,
    };
    body = encodeJson(encodeAnswer(read, new Map()));
    encoded.set(result, body);
  }
  return body;
}
