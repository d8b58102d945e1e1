/**
 * One-topic long-poll answers written from the broker's wire bytes ({@link Broker.readWire}):
 * the memory broker keeps each message as the bytes of `{"topic","id","data"}`, so an answer of
 * a thousand messages is a prefix, a slice or two of its pages and a suffix (joined into one
 * string when small, written as they are when large), with nothing decoded or encoded per
 * message. Used for the first read of a poll and
 * for a woken one (shared, through the read cache, by the polls one publish wakes).
 */
import type { Broker, BrokerWireRead } from '../broker';
import { type EncodedJson, STRING_BODY_LIMIT } from '../http';
import type { EngineContext } from './context';
import { jsonOf, topicHead } from './read';

const OPEN = '{"messages":[';

/** A one-topic poll's answer from wire bytes: its body when it has messages, and its position. */
export interface WireAnswer {
  body: EncodedJson | undefined;
  count: number;
  position: string;
}

/**
 * Reads `topic` after `cursor` as wire bytes, within the answer's limits (`batchLimit`
 * messages, `maxAnswerBytes`), and encodes the answer when it has messages; undefined when the
 * broker cannot (no `readWire`, or a wrapper replaced its `read`) or when the read is a reset
 * (the caller reads the usual way: a presence topic then starts over with a sync).
 */
export function answerWire(
  context: EngineContext,
  topic: string,
  cursor: string,
): WireAnswer | undefined {
  const broker: Broker = context.broker;
  const read = broker.readWire;
  if (read === undefined || read.of !== broker.read) return undefined;
  const { batchLimit, maxAnswerBytes } = context.options;
  const wire = read(topic, cursor, batchLimit, maxAnswerBytes);
  if (wire.reset) return undefined;
  const body = wire.count > 0 ? encodeWireAnswer(topic, wire) : undefined;
  return { body, count: wire.count, position: wire.position };
}

/**
 * `{"messages":[…],"cursors":{topic:position}}` from a wire read with messages, its byte length
 * counted from the parts (as `take` counts them: each message's bytes plus one): a string up to
 * `STRING_BODY_LIMIT` (written with its header in one write), else its parts.
 */
function encodeWireAnswer(topic: string, wire: BrokerWireRead): EncodedJson {
  const head = topicHead(topic);
  const at = jsonOf(wire.position);
  const close = `],"cursors":{${head.json}:${at.json}}}`;
  // '{"messages":[' 13, the messages with one comma each (the last one's is not written),
  // '],"cursors":{' 13, the topic, ':', the position, '}}' 3.
  const bytes = 13 + wire.bytes - 1 + 13 + head.jsonBytes + at.bytes + 3;
  const length = String(bytes);
  if (bytes <= STRING_BODY_LIMIT) {
    let text = OPEN;
    wire.chunks.forEach((chunk, index) => {
      text += index > 0 ? `,${chunk.toString()}` : chunk.toString();
    });
    text += close;
    return { body: text, length, ascii: bytes === text.length };
  }
  // Larger: the pages' slices themselves, between the two ends (no copy; pages never change
  // where messages were written).
  const parts: (string | Buffer)[] = [OPEN];
  wire.chunks.forEach((chunk, index) => {
    if (index > 0) parts.push(',');
    parts.push(chunk);
  });
  parts.push(close);
  return { body: parts, length };
}
