/**
 * The transport-independent heart of the server: from a validated poll request, the immediate
 * answer, or a hold that wakes on a publish (after the coalescing window) with the same answer
 * shape. Long-poll answers once; streaming and WebSocket call the same pieces in a loop.
 */
import type { IncomingMessage } from 'node:http';
import {
  type Cursors,
  type PollAnswer,
  PROTOCOL_VERSION,
  type TopicErrorBody,
  topicProblem,
  type WireMessage,
} from '@cometkit/core/protocol';
import type { Broker, BrokerReadResult } from './broker';
import { CometServerError } from './errors';
import type { ResolvedServerOptions } from './options';

/** A poll request that passed validation. Cursors are a Map: topics never become object keys. */
export interface ValidPoll {
  /** True for a request without `"v"`: answered in the legacy shape. */
  legacy: boolean;
  sessionGuid: string | undefined;
  userId: string | undefined;
  /** The topic set, without duplicates, in request order. */
  topics: string[];
  cursors: Map<string, string>;
  /** The client's `wait` in ms, undefined when not given. */
  wait: number | undefined;
}

/** What the pieces here need from the server. */
export interface PollContext {
  broker: Broker;
  options: ResolvedServerOptions;
  /** Shares reads between the held polls that one publish wakes (see {@link createReadCache}). */
  reads?: ReadCache;
  /** `waiting`: how many requests wait for a publish right now (for stats). */
  counters?: { waiting: number };
  /**
   * Fires the waiters one publish wakes in one callback (see {@link createWakeBatcher}).
   * Without it each waiter schedules its own.
   */
  wakes?: WakeBatcher;
}

/**
 * Ends coalescing windows in batches: every waiter whose window starts in the same synchronous
 * run (one publish waking 1 000 held polls) shares one `setImmediate` (`coalesceMs` 0) or one
 * `setTimeout`, instead of one each. The waiters' answers then continue in one microtask drain,
 * so all of their writes go out before the per-write bookkeeping (`finish`, `close`) of any.
 * A window ends exactly when it did with one timer per waiter: same start, same length.
 */
export interface WakeBatcher {
  /** Calls `fire` at the end of the window starting now; returns what {@link cancel} takes. */
  schedule(fire: () => void): WakeBatch;
  /** Takes `fire` out of `batch` (the waiter ended another way); the last one out clears it. */
  cancel(batch: WakeBatch, fire: () => void): void;
}

/** One window's waiters and its timer. */
export interface WakeBatch {
  fires: Set<() => void>;
  timer: ReturnType<typeof setImmediate> | ReturnType<typeof setTimeout> | undefined;
}

/** Makes a {@link WakeBatcher} for windows of `coalesceMs` (0: the next event-loop turn). */
export function createWakeBatcher(coalesceMs: number): WakeBatcher {
  // The batch still taking waiters. With `coalesceMs` 0 it takes them until it fires (as the
  // separate immediates would all have run in that same check phase); with a window it takes
  // them only until the current synchronous run ends, so no waiter's window is cut short.
  let open: WakeBatch | undefined;
  const run = (batch: WakeBatch) => {
    if (open === batch) open = undefined;
    batch.timer = undefined;
    for (const fire of batch.fires) fire();
    batch.fires.clear();
  };
  const clear = (batch: WakeBatch) => {
    if (batch.timer === undefined) return;
    if (coalesceMs === 0) clearImmediate(batch.timer as ReturnType<typeof setImmediate>);
    else clearTimeout(batch.timer as ReturnType<typeof setTimeout>);
    batch.timer = undefined;
  };
  return {
    schedule(fire) {
      let batch = open;
      if (batch === undefined) {
        const made: WakeBatch = { fires: new Set(), timer: undefined };
        made.timer = coalesceMs === 0 ? setImmediate(run, made) : setTimeout(run, coalesceMs, made);
        if (coalesceMs > 0) {
          queueMicrotask(() => {
            if (open === made) open = undefined;
          });
        }
        open = made;
        batch = made;
      }
      batch.fires.add(fire);
      return batch;
    },
    cancel(batch, fire) {
      batch.fires.delete(fire);
      // An abandoned window leaves no timer behind (and no reference to its waiters).
      if (batch.fires.size === 0) {
        clear(batch);
        if (open === batch) open = undefined;
      }
    },
  };
}

/**
 * Shares `broker.read(topic, cursor)` between requests woken together: when one publish wakes
 * 1 000 held polls that all sit at the same cursor, the broker is read once, not 1 000 times.
 * An entry lives until the next event-loop turn, or until a publish on its topic
 * (`invalidate`, called by every held poll's broker listener), so nobody reads a stale copy:
 * whoever reads through the cache is itself listening to that topic.
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

const MAX_ID_LENGTH = 200;

function badRequest(message: string): CometServerError {
  return new CometServerError(400, 'bad_request', message);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function optionalString(body: Record<string, unknown>, key: string): string | undefined {
  const value = body[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string' || value.length > MAX_ID_LENGTH) {
    throw badRequest(`"${key}" must be a string of at most ${MAX_ID_LENGTH} characters`);
  }
  return value;
}

/** Checks `v`, `sessionGuid` and `userId`, common to polls and sends. */
export function parseEnvelope(body: unknown): {
  legacy: boolean;
  sessionGuid: string | undefined;
  userId: string | undefined;
  body: Record<string, unknown>;
} {
  if (!isRecord(body)) throw badRequest('the body must be a JSON object');
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

/** Validates a poll body; throws a `400 bad_request` {@link CometServerError} saying what is wrong. */
export function parsePollRequest(raw: unknown, maxTopics: number): ValidPoll {
  const { legacy, sessionGuid, userId, body } = parseEnvelope(raw);
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
      if (typeof cursor !== 'string' || cursor.length === 0 || cursor.length > MAX_ID_LENGTH) {
        throw badRequest(`the cursor of topic ${JSON.stringify(topic.slice(0, 40))} must be an id`);
      }
      // A cursor for a topic outside the set is ignored: the client just dropped that topic.
      if (topics.has(topic)) cursors.set(topic, cursor);
    }
  }
  let wait: number | undefined;
  if (body.wait !== undefined && body.wait !== null) {
    if (typeof body.wait !== 'number' || !Number.isFinite(body.wait) || body.wait < 0) {
      throw badRequest('"wait" must be a number of ms >= 0');
    }
    wait = Math.floor(body.wait);
  }
  return { legacy, sessionGuid, userId, topics: [...topics], cursors, wait };
}

/** The hold time for a poll: the client's `wait`, capped by `maxWait`. */
export function holdTime(poll: ValidPoll, options: ResolvedServerOptions): number {
  return Math.min(poll.wait ?? options.maxWait, options.maxWait);
}

/** The topics a request may poll, and the refusals of the others. */
export interface AuthorizedTopics {
  allowed: string[];
  errors: Map<string, TopicErrorBody>;
}

/** Asks the `authorize` hook about every topic of a poll (in parallel). */
export async function authorizeTopics(
  context: PollContext,
  poll: ValidPoll,
  req: IncomingMessage,
): Promise<AuthorizedTopics> {
  const authorize = context.options.authorize;
  if (!authorize) return { allowed: poll.topics, errors: new Map() };
  const verdicts = await Promise.all(
    poll.topics.map((topic) =>
      checkTopic(context, req, 'poll', topic, poll.sessionGuid, poll.userId),
    ),
  );
  const allowed: string[] = [];
  const errors = new Map<string, TopicErrorBody>();
  poll.topics.forEach((topic, index) => {
    const verdict = verdicts[index];
    if (verdict === undefined) allowed.push(topic);
    else errors.set(topic, verdict);
  });
  return { allowed, errors };
}

/** Runs `authorize` for one topic: undefined when allowed, else the refusal. Never throws. */
export async function checkTopic(
  context: PollContext,
  req: IncomingMessage,
  action: 'poll' | 'send',
  topic: string,
  sessionGuid: string | undefined,
  userId: string | undefined,
): Promise<TopicErrorBody | undefined> {
  const authorize = context.options.authorize;
  if (!authorize) return undefined;
  try {
    const verdict = await authorize({ req, action, topic, sessionGuid, userId });
    if (verdict === true) return undefined;
    if (
      typeof verdict === 'object' &&
      verdict !== null &&
      typeof verdict.code === 'string' &&
      typeof verdict.message === 'string'
    ) {
      return { code: verdict.code, message: verdict.message };
    }
    return { code: 'forbidden', message: `not allowed to ${action} topic "${topic}"` };
  } catch (error) {
    context.options.log({
      level: 'error',
      event: 'hook.failed',
      message: 'the authorize hook threw; the topic is refused',
      hook: 'authorize',
      topic,
      error,
    });
    return { code: 'internal', message: `could not check access to topic "${topic}"` };
  }
}

/** The result of reading every topic after its cursor. */
export interface ReadResult {
  messages: WireMessage[];
  /** The position of every topic read, after `messages`. */
  cursors: Map<string, string>;
  resets: string[];
}

/** Reads every topic after its cursor (a missing cursor reads the current position). */
export async function readTopics(
  context: PollContext,
  topics: readonly string[],
  cursors: ReadonlyMap<string, string>,
  shared = false,
): Promise<ReadResult> {
  const limit = context.options.batchLimit;
  const cache = shared ? context.reads : undefined;
  const results = await Promise.all(
    topics.map((topic) =>
      cache
        ? cache.read(topic, cursors.get(topic))
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

/** How a wait ended. */
export type WaitOutcome = 'publish' | 'timeout' | 'abort';

/** What a wait needs from a stop signal: the part of `AbortSignal` it uses. */
export interface StopSignal {
  readonly aborted: boolean;
  readonly reason: unknown;
  addEventListener(type: 'abort', listener: () => void, options?: { once?: boolean }): void;
  removeEventListener(type: 'abort', listener: () => void): void;
}

/** Anything a drain can stop: an `AbortController`, or a held long-poll itself. */
export interface Abortable {
  abort(reason?: unknown): void;
}

/**
 * Listens to a topic set from the moment it is made, so that nothing published between a read
 * and the start of a wait is missed. One per held request; `dispose` leaves nothing behind.
 */
export interface Waiter {
  /**
   * Resolves `'publish'` once a topic got a message (at once if one came since the last
   * `wait`), after the coalescing window; `'timeout'` after `ms`; `'abort'` when `signal`
   * aborts. Clears the "published" mark, so read after it resolves.
   */
  wait(ms: number, signal?: StopSignal): Promise<WaitOutcome>;
  /** Stops listening and clears any timer. */
  dispose(): void;
}

/** Makes a {@link Waiter} over `topics`. */
export function createWaiter(context: PollContext, topics: readonly string[]): Waiter {
  const wakes = context.wakes ?? createWakeBatcher(context.options.coalesceMs);
  let published = false;
  let settle: ((outcome: WaitOutcome) => void) | undefined;
  let holdTimer: ReturnType<typeof setTimeout> | undefined;
  /** The batch whose window this waiter is in, while coalescing. */
  let batch: WakeBatch | undefined;

  const fire = () => {
    batch = undefined;
    published = false;
    settle?.('publish');
  };
  const startCoalescing = () => {
    if (batch === undefined) batch = wakes.schedule(fire);
  };
  const stopListening = context.broker.listen(topics, (topic) => {
    context.reads?.invalidate(topic);
    published = true;
    if (settle) startCoalescing();
  });
  const clearTimers = () => {
    if (holdTimer !== undefined) clearTimeout(holdTimer);
    holdTimer = undefined;
    if (batch !== undefined) wakes.cancel(batch, fire);
    batch = undefined;
  };

  return {
    wait(ms, signal) {
      if (signal?.aborted) return Promise.resolve('abort');
      return new Promise<WaitOutcome>((resolve) => {
        const onAbort = () => settle?.('abort');
        const counters = context.counters;
        if (counters) counters.waiting += 1;
        settle = (outcome) => {
          settle = undefined;
          if (counters) counters.waiting -= 1;
          clearTimers();
          signal?.removeEventListener('abort', onAbort);
          resolve(outcome);
        };
        signal?.addEventListener('abort', onAbort, { once: true });
        holdTimer = setTimeout(() => settle?.('timeout'), Math.max(0, ms));
        if (published) startCoalescing();
      });
    },
    dispose() {
      stopListening();
      settle?.('abort');
      clearTimers();
    },
  };
}

function toCursors(map: ReadonlyMap<string, string>): Cursors {
  return Object.fromEntries(map);
}

/** The version 1 answer for `read` (and the refusals), with `reconnect` at the end of a hold. */
export function buildAnswer(
  read: ReadResult,
  errors: ReadonlyMap<string, TopicErrorBody>,
  reconnect = false,
): PollAnswer {
  const answer: PollAnswer = {};
  if (read.messages.length > 0) answer.messages = read.messages;
  answer.cursors = toCursors(read.cursors);
  if (read.resets.length > 0) answer.resets = read.resets;
  if (errors.size > 0) answer.errors = Object.fromEntries(errors);
  if (reconnect) answer.reconnect = true;
  return answer;
}

// One serialized body per broker read result: the held polls one publish wakes at the same
// cursor share that result (through the read cache), and so get the same bytes, built once.
// Keyed weakly: the cache drops its results after the turn, and the bodies go with them.
const encoded = new WeakMap<BrokerReadResult, Buffer>();

/** The answer body for a one-topic poll woken with `result` (messages or a reset). */
export function encodeWoken(topic: string, result: BrokerReadResult): Buffer {
  let body = encoded.get(result);
  if (body === undefined) {
    const answer: PollAnswer = {};
    if (result.messages.length > 0) {
      answer.messages = result.messages.map((m) => ({ topic: m.topic, id: m.id, data: m.data }));
    }
    answer.cursors = { [topic]: result.position };
    if (result.reset) answer.resets = [topic];
    body = Buffer.from(JSON.stringify(answer));
    encoded.set(result, body);
  }
  return body;
}
