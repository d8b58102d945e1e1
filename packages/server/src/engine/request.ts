/**
 * Validation of every request the server takes, whichever transport carried it: the poll and
 * send bodies of HTTP, and the `poll` and `send` frames of a WebSocket. Untrusted input; each
 * rule has one home here, and a broken rule throws a `400 bad_request` {@link CometServerError}
 * saying what is wrong.
 */
import { PROTOCOL_VERSION, topicProblem } from '@cometkit/core/protocol';
import { CometServerError } from '../errors';

/** The longest id the server takes: message ids, cursors, send ids, sessions and users. */
export const MAX_ID_LENGTH = 200;

/** A poll request that passed validation. Cursors are a Map: topics never become object keys. */
export interface ValidPoll {
  /** True for a request without `"v"`: answered in the legacy shape. */
  legacy: boolean;
  sessionGuid: string | undefined;
  userId: string | undefined;
  /** The topic set, without duplicates, in request order. */
  topics: string[];
  cursors: Map<string, string>;
  /** Per topic without a cursor: the recent messages to start with. */
  rewind: Map<string, ValidRewind>;
  /** The client's `wait` in ms, undefined when not given. */
  wait: number | undefined;
}

/** A topic's rewind that passed validation (see `RewindSpec` in the protocol). */
export interface ValidRewind {
  /** At most this many messages (the server caps it at its `batchLimit`). */
  count: number | undefined;
  /** Only messages published in the last `since` ms. */
  since: number | undefined;
}

/** A send that passed validation, from an HTTP body or a WebSocket frame. */
export interface ValidSend {
  topic: string;
  /** The client-made id (idempotency key); only a legacy HTTP send may leave it out. */
  id: string | undefined;
  data: unknown;
  sessionGuid: string | undefined;
  userId: string | undefined;
}

/** Who sent the request, as far as the client says. */
export interface Session {
  sessionGuid: string | undefined;
  userId: string | undefined;
}

/** A `400 bad_request` with `message`. */
export function badRequest(message: string): CometServerError {
  return new CometServerError(400, 'bad_request', message);
}

/** True for a plain JSON object (not an array, not null). */
export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** True for an id: a string of 1 to {@link MAX_ID_LENGTH} characters. */
function isId(value: unknown): value is string {
  return typeof value === 'string' && value.length > 0 && value.length <= MAX_ID_LENGTH;
}

function optionalString(body: Record<string, unknown>, key: string): string | undefined {
  const value = body[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string' || value.length > MAX_ID_LENGTH) {
    throw badRequest(`"${key}" must be a string of at most ${MAX_ID_LENGTH} characters`);
  }
  return value;
}

/** The id of a send, or a `400` saying what an id is. */
export function requireSendId(value: unknown): string {
  if (!isId(value)) throw badRequest(`"id" must be a string of 1 to ${MAX_ID_LENGTH} characters`);
  return value;
}

/**
 * What is wrong with `value` as JSON data, or undefined: nested deeper than `maxDepth` arrays
 * and objects (a cycle is infinitely deep), or a value JSON cannot carry (a `bigint`). Walks
 * without recursion, so a hostile depth cannot overflow the stack here.
 */
export function jsonProblem(value: unknown, maxDepth: number): string | undefined {
  const stack: unknown[] = [value];
  const depths: number[] = [0];
  while (stack.length > 0) {
    const item = stack.pop();
    const depth = depths.pop() as number;
    if (typeof item === 'bigint') return 'a bigint cannot be sent as JSON';
    if (typeof item !== 'object' || item === null) continue;
    if (depth >= maxDepth) return `JSON nested deeper than ${maxDepth} levels`;
    const values = Array.isArray(item) ? item : Object.values(item);
    for (const child of values) {
      if (typeof child === 'object' || typeof child === 'bigint') {
        stack.push(child);
        depths.push(depth + 1);
      }
    }
  }
  return undefined;
}

const OPENING = ['{', '['] as const;

/**
 * {@link jsonProblem} for a value already encoded as JSON text (`JSON.stringify` refused what
 * JSON cannot carry): its nesting counted on the text, where strings are skipped with
 * `indexOf`. A loop over the characters: it runs on every publish, and cold.
 */
export function jsonTextProblem(json: string, maxDepth: number): string | undefined {
  // No deeper than its opening brackets, counted by `indexOf` (inside strings too): most texts
  // have few, and need no scan.
  let opening = 0;
  for (const bracket of OPENING) {
    for (let at = json.indexOf(bracket); at !== -1; at = json.indexOf(bracket, at + 1)) {
      opening += 1;
      if (opening > maxDepth) break;
    }
  }
  if (opening <= maxDepth) return undefined;
  let depth = 0;
  for (let index = 0; index < json.length; index += 1) {
    const code = json.charCodeAt(index);
    if (code === 0x22) {
      // To the closing quote: one not escaped by an odd run of backslashes.
      let end = json.indexOf('"', index + 1);
      while (end !== -1 && escaped(json, end)) end = json.indexOf('"', end + 1);
      if (end === -1) return undefined;
      index = end;
    } else if (code === 0x7b || code === 0x5b) {
      depth += 1;
      if (depth > maxDepth) return `JSON nested deeper than ${maxDepth} levels`;
    } else if (code === 0x7d || code === 0x5d) depth -= 1;
  }
  return undefined;
}

/** True when the character at `at` follows an odd number of backslashes. */
function escaped(text: string, at: number): boolean {
  let count = 0;
  for (let index = at - 1; index >= 0 && text.charCodeAt(index) === 0x5c; index -= 1) count += 1;
  return count % 2 === 1;
}

/** Throws a `400` when {@link jsonProblem} finds something. */
export function assertJsonValue(value: unknown, maxDepth: number): void {
  const problem = jsonProblem(value, maxDepth);
  if (problem !== undefined) throw badRequest(problem);
}

/** Checks `v`, `sessionGuid` and `userId` of an HTTP body, common to polls and sends. */
function parseEnvelope(
  body: unknown,
  maxDepth: number,
): Session & {
  legacy: boolean;
  body: Record<string, unknown>;
} {
  if (!isRecord(body)) throw badRequest('the body must be a JSON object');
  assertJsonValue(body, maxDepth);
  const legacy = body.v === undefined;
  if (!legacy && body.v !== PROTOCOL_VERSION) {
    throw badRequest(
      `unsupported protocol version ${JSON.stringify(body.v)}; this server speaks 1`,
    );
  }
  const sessionGuid = optionalString(body, 'sessionGuid');
  if (!legacy && sessionGuid === undefined) throw badRequest('"sessionGuid" is required');
  return { legacy, sessionGuid, userId: optionalString(body, 'userId'), body };
}

/** Validates a poll (an HTTP body or a WebSocket `poll` frame). */
export function parsePollRequest(raw: unknown, maxTopics: number, maxDepth: number): ValidPoll {
  const { legacy, sessionGuid, userId, body } = parseEnvelope(raw, maxDepth);
  const topicList = body.topics;
  if (!Array.isArray(topicList)) throw badRequest('"topics" must be an array of topic names');
  if (topicList.length === 0) throw badRequest('"topics" must name at least one topic');
  if (topicList.length > maxTopics) {
    throw badRequest(`at most ${maxTopics} topics per request, got ${topicList.length}`);
  }
  const topics = new Set<string>();
  for (const topic of topicList) {
    const problem = topicProblem(topic);
    if (problem !== undefined) throw badRequest(problem);
    topics.add(topic as string);
  }
  const cursors = new Map<string, string>();
  if (body.cursors !== undefined && body.cursors !== null) {
    if (!isRecord(body.cursors)) throw badRequest('"cursors" must be an object {topic: id}');
    for (const [topic, cursor] of Object.entries(body.cursors)) {
      if (!isId(cursor)) {
        throw badRequest(`the cursor of topic ${JSON.stringify(topic.slice(0, 40))} must be an id`);
      }
      // A cursor for a topic outside the set is ignored: the client just dropped that topic.
      if (topics.has(topic)) cursors.set(topic, cursor);
    }
  }
  const rewind = new Map<string, ValidRewind>();
  if (body.rewind !== undefined && body.rewind !== null) {
    if (!isRecord(body.rewind))
      throw badRequest('"rewind" must be an object {topic: {count, since}}');
    for (const [topic, spec] of Object.entries(body.rewind)) {
      const name = JSON.stringify(topic.slice(0, 40));
      if (!isRecord(spec)) throw badRequest(`the rewind of topic ${name} must be an object`);
      const count = positiveOrUndefined(spec.count);
      const since = positiveOrUndefined(spec.since);
      if (count === null || since === null || (count === undefined && since === undefined)) {
        throw badRequest(
          `the rewind of topic ${name} needs "count" and/or "since", positive integers`,
        );
      }
      // A topic outside the set, or with a cursor, has nothing to rewind.
      if (topics.has(topic) && !cursors.has(topic)) rewind.set(topic, { count, since });
    }
  }
  let wait: number | undefined;
  if (body.wait !== undefined && body.wait !== null) {
    if (typeof body.wait !== 'number' || !Number.isFinite(body.wait) || body.wait < 0) {
      throw badRequest('"wait" must be a number of ms >= 0');
    }
    wait = Math.floor(body.wait);
  }
  return { legacy, sessionGuid, userId, topics: [...topics], cursors, rewind, wait };
}

/** A positive safe integer, undefined when absent, null when anything else. */
function positiveOrUndefined(value: unknown): number | undefined | null {
  if (value === undefined) return undefined;
  return Number.isSafeInteger(value) && (value as number) >= 1 ? (value as number) : null;
}

/** The send rules both transports share: `id` (unless `optionalId`) and `data`. */
function parseSend(
  topic: string,
  body: Record<string, unknown>,
  session: Session,
  optionalId: boolean,
): ValidSend {
  const id = optionalId && body.id === undefined ? undefined : requireSendId(body.id);
  if (!('data' in body)) throw badRequest('"data" is required');
  return { topic, id, data: body.data, ...session };
}

/** Validates the body of `POST {base}/{topic}` (the topic comes from {@link topicFromPath}). */
export function parseSendRequest(topic: string, raw: unknown, maxDepth: number): ValidSend {
  const { legacy, sessionGuid, userId, body } = parseEnvelope(raw, maxDepth);
  // Only the legacy shape may send without an id (and so without idempotency).
  return parseSend(topic, body, { sessionGuid, userId }, legacy);
}

/**
 * Validates a WebSocket `send` frame (its `id` was checked with {@link requireSendId}, so a
 * refusal can name it). A frame may name its session, as an HTTP send does; else `socket`'s
 * (from the last poll) counts, so a send retried over HTTP after the socket died is still
 * recognised as a repeat.
 */
export function parseSendFrame(frame: Record<string, unknown>, socket: Session): ValidSend {
  const problem = topicProblem(frame.topic);
  if (problem !== undefined) throw badRequest(problem);
  const session = {
    sessionGuid: optionalString(frame, 'sessionGuid') ?? socket.sessionGuid,
    userId: optionalString(frame, 'userId') ?? socket.userId,
  };
  return parseSend(frame.topic as string, frame, session, false);
}

/** A WebSocket frame: a JSON object with a `type`. */
export type Frame = Record<string, unknown> & { type?: unknown };

/** Parses a WebSocket text frame into a JSON object at most `maxDepth` deep. */
export function parseFrame(text: string, maxDepth: number): Frame {
  let frame: unknown;
  try {
    frame = JSON.parse(text);
  } catch {
    throw badRequest('a frame must be a JSON object');
  }
  if (!isRecord(frame)) throw badRequest('a frame must be a JSON object');
  assertJsonValue(frame, maxDepth);
  return frame;
}

/** The topic named by the path after the base (`{base}/{topic}`). */
export function topicFromPath(segment: string): string {
  let topic: string;
  try {
    topic = decodeURIComponent(segment);
  } catch {
    throw badRequest('the topic in the path is not valid URL encoding');
  }
  const problem = topicProblem(topic);
  if (problem !== undefined) throw badRequest(problem);
  return topic;
}

/** The topic of a publish from the server's own code, or a `400`. */
export function assertTopic(topic: string): void {
  const problem = topicProblem(topic);
  if (problem !== undefined) throw badRequest(problem);
}
