/**
 * Client-side reading of server answers: everything from the network is untrusted, so each
 * answer is checked against the protocol's shape before the client acts on it.
 */
import { ProtocolError } from './errors';
import type { ServerTimings, TopicErrorBody } from './protocol';

/** A message as the client delivers it: `id` is undefined for legacy answers. */
export interface AnswerMessage {
  topic: string;
  id: string | undefined;
  data: unknown;
}

/** A checked poll answer. Topics are `Map` keys. */
export interface ParsedAnswer {
  messages: AnswerMessage[];
  cursors: Map<string, string>;
  resets: string[];
  errors: Map<string, TopicErrorBody>;
  /** The timings the server announced in an `open`; each one only when it is a usable number. */
  timings: ServerTimings;
}

type Json = Record<string, unknown>;

const isObject = (value: unknown): value is Json =>
  typeof value === 'object' && value !== null && !Array.isArray(value);
const has = (object: Json, key: string) => Object.hasOwn(object, key);

/** Parses JSON text, or undefined when it is not JSON. */
export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/**
 * Checks a 200 poll answer (or a stream/WebSocket payload). Accepts the legacy shapes too:
 * `{"topic", "data"}` (one message without id) and `{"reconnect": true}` (an empty answer: the
 * client polls again after every answer anyway).
 * @returns the answer, or a `ProtocolError` saying what is wrong.
 */
export function parsePollAnswer(body: unknown): ParsedAnswer | ProtocolError {
  const bad = (what: string) => new ProtocolError(`bad answer: ${what}`);
  if (!isObject(body)) return bad('not an object');
  const answer: ParsedAnswer = {
    messages: [],
    cursors: new Map(),
    resets: [],
    errors: new Map(),
    timings: {},
  };
  if (has(body, 'messages')) {
    if (!Array.isArray(body.messages)) return bad('messages');
    for (const m of body.messages) {
      if (
        !isObject(m) ||
        typeof m.topic !== 'string' ||
        typeof m.id !== 'string' ||
        !has(m, 'data')
      )
        return bad('message');
      answer.messages.push({ topic: m.topic, id: m.id, data: m.data });
    }
  } else if (has(body, 'topic')) {
    if (typeof body.topic !== 'string' || !has(body, 'data')) return bad('message');
    answer.messages.push({
      topic: body.topic,
      id: typeof body.id === 'string' ? body.id : undefined,
      data: body.data,
    });
  }
  if (has(body, 'cursors')) {
    if (!isObject(body.cursors)) return bad('cursors');
    for (const [topic, id] of Object.entries(body.cursors)) {
      if (typeof id !== 'string') return bad('cursors');
      answer.cursors.set(topic, id);
    }
  }
  if (has(body, 'resets')) {
    const resets = body.resets;
    if (!Array.isArray(resets) || !resets.every((t) => typeof t === 'string')) return bad('resets');
    answer.resets = resets;
  }
  if (has(body, 'errors')) {
    if (!isObject(body.errors)) return bad('errors');
    for (const [topic, e] of Object.entries(body.errors)) {
      answer.errors.set(topic, {
        code: isObject(e) && typeof e.code === 'string' ? e.code : 'error',
        message: isObject(e) && typeof e.message === 'string' ? e.message : 'refused',
      });
    }
  }
  // Timings only tune watchdogs: a bad one is ignored (the defaults apply), never fatal.
  const timings = isObject(body.timings) ? body.timings : {};
  for (const key of ['heartbeat', 'idleTimeout'] as const) {
    const value = timings[key];
    if (typeof value === 'number' && value > 0 && value < Infinity) answer.timings[key] = value;
  }
  return answer;
}

/** The `{error: {code, message}}` of an error answer, or undefined when the body has none. */
export function parseErrorBody(body: unknown): TopicErrorBody | undefined {
  if (!isObject(body) || !isObject(body.error)) return undefined;
  const { code, message } = body.error;
  return typeof code === 'string'
    ? { code, message: typeof message === 'string' ? message : code }
    : undefined;
}

/**
 * A `Retry-After` header in ms: delta-seconds or an HTTP date. Undefined when absent or
 * unreadable; never negative.
 */
export function parseRetryAfter(value: string | null, now: number): number | undefined {
  if (!value) return undefined;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const date = Date.parse(text);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}
