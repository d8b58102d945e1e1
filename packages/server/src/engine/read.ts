/**
 * Reading topics after their cursors, the read cache that shares one broker read between the
 * requests one publish wakes, and the encoding of what was read into answers (with one shared
 * body for the common woken one-topic poll).
 */
import type { Cursors, PollAnswer, TopicErrorBody, WireMessage } from '@cometkit/core/protocol';
import type { Broker, BrokerReadResult } from '../broker';
import { type EncodedJson, encodeJson } from '../http';
import type { EngineContext } from './context';

/**
 * Shares `broker.read(topic, cursor)` between requests woken together: when one publish wakes
 * 1 000 held polls that all sit at the same cursor, the broker is read once, not 1 000 times.
 * An entry lives until the next event-loop turn, or until a publish on its topic
 * (`invalidate`, called by every held request's broker listener), so nobody reads a stale
 * copy: whoever reads through the cache is itself listening to that topic.
 */
export interface ReadCache {
  read(topic: string, cursor: string | undefined): Promise<BrokerReadResult>;
  invalidate(topic: string): void;
}

/** Makes a {@link ReadCache} over `broker`. */
export function createReadCache(broker: Broker, limit: number): ReadCache {
  const entries = new Map<string, Map<string, Promise<BrokerReadResult>>>();
  let sweeping = false;
  return {
    read(topic, cursor) {
      if (cursor === undefined) return broker.read(topic, cursor, limit);
      let byCursor = entries.get(topic);
      const cached = byCursor?.get(cursor);
      if (cached) return cached;
      const pending = broker.read(topic, cursor, limit);
      if (!byCursor) {
        byCursor = new Map();
        entries.set(topic, byCursor);
      }
      byCursor.set(cursor, pending);
      // A failed read is not kept: the next reader tries again.
      pending.catch(() => byCursor?.delete(cursor));
      if (!sweeping) {
        sweeping = true;
        setImmediate(() => {
          sweeping = false;
          entries.clear();
        });
      }
      return pending;
    },
    invalidate(topic) {
      entries.delete(topic);
    },
  };
}

/** The result of reading every topic after its cursor. */
export interface ReadResult {
  messages: WireMessage[];
  /** The position of every topic read, after `messages`. */
  cursors: Map<string, string>;
  resets: string[];
}

/** Nothing read (the answer of a poll whose every topic was refused). */
export const NOTHING_READ: ReadResult = { messages: [], cursors: new Map(), resets: [] };

/**
 * Reads every topic after its cursor (a missing cursor reads the current position). `woken`
 * reads go through the read cache: only a request listening to its topics may use it.
 */
export async function readTopics(
  context: EngineContext,
  topics: readonly string[],
  cursors: ReadonlyMap<string, string>,
  woken = false,
): Promise<ReadResult> {
  const limit = context.options.batchLimit;
  const results = await Promise.all(
    topics.map((topic) =>
      woken
        ? context.reads.read(topic, cursors.get(topic))
        : context.broker.read(topic, cursors.get(topic), limit),
    ),
  );
  const messages: WireMessage[] = [];
  const positions = new Map<string, string>();
  const resets: string[] = [];
  topics.forEach((topic, index) => {
    const result = results[index];
    if (!result) return;
    for (const message of result.messages) {
      messages.push({ topic: message.topic, id: message.id, data: message.data });
    }
    positions.set(topic, result.position);
    if (result.reset) resets.push(topic);
  });
  return { messages, cursors: positions, resets };
}

/** True when some topic filled a whole batch: more may follow, so read on at once. */
export function hitBatchLimit(read: ReadResult, limit: number): boolean {
  if (read.messages.length < limit) return false;
  const perTopic = new Map<string, number>();
  for (const message of read.messages) {
    const count = (perTopic.get(message.topic) ?? 0) + 1;
    if (count >= limit) return true;
    perTopic.set(message.topic, count);
  }
  return false;
}

/** The version 1 answer for `read` (and the refusals). */
export function buildAnswer(
  read: ReadResult,
  errors: ReadonlyMap<string, TopicErrorBody>,
): PollAnswer {
  const answer: PollAnswer = {};
  if (read.messages.length > 0) answer.messages = read.messages;
  answer.cursors = Object.fromEntries(read.cursors) as Cursors;
  if (read.resets.length > 0) answer.resets = read.resets;
  if (errors.size > 0) answer.errors = Object.fromEntries(errors);
  return answer;
}

// One serialized body per broker read result: the held polls one publish wakes at the same
// cursor share that result (through the read cache), and so get the same bytes, built once.
// Keyed weakly: the cache drops its results after the turn, and the bodies go with them.
const encoded = new WeakMap<BrokerReadResult, EncodedJson>();

/** The answer body for a one-topic poll woken with `result` (messages or a reset). */
export function encodeWoken(topic: string, result: BrokerReadResult): EncodedJson {
  let body = encoded.get(result);
  if (body === undefined) {
    const answer: PollAnswer = {};
    if (result.messages.length > 0) {
      answer.messages = result.messages.map((m) => ({ topic: m.topic, id: m.id, data: m.data }));
    }
    answer.cursors = { [topic]: result.position };
    if (result.reset) answer.resets = [topic];
    body = encodeJson(JSON.stringify(answer));
    encoded.set(result, body);
  }
  return body;
}
