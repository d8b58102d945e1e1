import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Cursors, TopicErrorBody, WireMessage } from '@cometkit/core/protocol';
import { CometServerError } from '../errors';
import { type FrameworkRequest, readJsonBody } from '../http';
import {
  authorizeTopics,
  createWaiter,
  parsePollRequest,
  type ReadResult,
  readTopics,
  type ValidPoll,
} from '../poll';
import type { HandlerContext } from './context';

/** The payload of a stream's `open` event and of a WebSocket `open` frame. */
export interface OpenPayload {
  cursors: Cursors;
  resets?: string[];
  errors?: Record<string, TopicErrorBody>;
}

/** The payload of a stream's `messages` event and of a WebSocket `messages` frame. */
export interface MessagesPayload {
  messages: WireMessage[];
  cursors: Cursors;
  /** Topics whose cursor fell out of history while the connection was open (rare). */
  resets?: string[];
}

/** Where a subscription writes; each call resolves once the transport took the data. */
export interface SubscriptionSink {
  open(payload: OpenPayload): Promise<void>;
  messages(payload: MessagesPayload): Promise<void>;
}

// setTimeout's largest delay: a longer one fires at once. The wait loops again after it.
const LONGEST_WAIT_MS = 2 ** 31 - 1;

/**
 * Runs a poll as a subscription: `open` at once (cursors, resets, refusals), then `messages`
 * as they are published, each carrying the cursors after it, until `signal` aborts. The same
 * engine as long-poll (authorize, read, wait with coalescing, batch limit), in a loop that
 * carries the cursors forward. Listener and timers are gone when it settles. Throws when the
 * broker fails.
 */
export async function runSubscription(
  context: HandlerContext,
  poll: ValidPoll,
  req: IncomingMessage,
  signal: AbortSignal,
  sink: SubscriptionSink,
): Promise<void> {
  const { allowed, errors } = await authorizeTopics(context, poll, req);
  if (signal.aborted) return;
  const refusals = errors.size > 0 ? { errors: Object.fromEntries(errors) } : {};
  if (allowed.length === 0) {
    // Nothing to listen to: the client drops the refused topics and opens a new connection.
    await sink.open({ cursors: {}, ...refusals });
    return;
  }
  // Listening starts before the first read so that a publish in between is not missed.
  const waiter = createWaiter(context, allowed);
  try {
    let read = await readTopics(context, allowed, poll.cursors);
    if (signal.aborted) return;
    // `open` carries the positions before the first batch, so a client that keeps them and
    // loses the connection right after asks for that batch again.
    const before: Cursors = {};
    for (const topic of allowed) {
      const given = poll.cursors.get(topic);
      const position = read.cursors.get(topic);
      const value = given !== undefined && !read.resets.includes(topic) ? given : position;
      if (value !== undefined) before[topic] = value;
    }
    await sink.open({
      cursors: before,
      ...(read.resets.length > 0 ? { resets: read.resets } : {}),
      ...refusals,
    });
    let resets: string[] = [];
    for (;;) {
      if (signal.aborted) return;
      if (read.messages.length > 0 || resets.length > 0) {
        await sink.messages({
          messages: read.messages,
          cursors: Object.fromEntries(read.cursors),
          ...(resets.length > 0 ? { resets } : {}),
        });
        if (signal.aborted) return;
      }
      // A full batch for a topic means more may follow: read on at once, without waiting.
      if (!hitBatchLimit(read, context.options.batchLimit)) {
        const outcome = await waiter.wait(LONGEST_WAIT_MS, signal);
        if (outcome === 'abort') return;
        if (outcome === 'timeout') {
          read = { ...read, messages: [] };
          resets = [];
          continue;
        }
      }
      read = await readTopics(context, allowed, read.cursors, true);
      resets = read.resets;
    }
  } finally {
    waiter.dispose();
  }
}

function hitBatchLimit(read: ReadResult, limit: number): boolean {
  if (read.messages.length < limit) return false;
  const perTopic = new Map<string, number>();
  for (const message of read.messages) {
    const count = (perTopic.get(message.topic) ?? 0) + 1;
    if (count >= limit) return true;
    perTopic.set(message.topic, count);
  }
  return false;
}

/** Why a stream ends: the client left, the server drains, or the stream time cap. */
type StreamEnd = 'gone' | 'drain' | 'cap';

const STREAM_HEADERS = {
  'content-type': 'text/event-stream; charset=utf-8',
  // `no-transform` keeps compression middleware and proxies from holding the events back.
  'cache-control': 'no-cache, no-transform',
  // nginx buffers proxied answers unless told otherwise per response.
  'x-accel-buffering': 'no',
  connection: 'keep-alive',
};

/** One Server-Sent Event. JSON has no raw line breaks, so one `data:` line is always enough. */
function event(name: string, payload: unknown): string {
  return `event: ${name}\ndata: ${JSON.stringify(payload)}\n\n`;
}

/** Writes `text`; when the socket is full, resolves once it drained or the stream ends. */
function write(res: ServerResponse, text: string, signal: AbortSignal): Promise<void> {
  if (res.writableEnded || res.destroyed) return Promise.resolve();
  if (res.write(text)) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      signal.removeEventListener('abort', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
    signal.addEventListener('abort', done, { once: true });
  });
}

/**
 * `POST {base}/_stream`: the poll request answered as Server-Sent Events. Errors found before
 * the stream opens (bad body, too large, draining) are ordinary JSON error answers; after it
 * opens, the stream just ends and the client opens a new one with its cursors.
 */
export async function handleStream(
  context: HandlerContext,
  req: FrameworkRequest,
  res: ServerResponse,
): Promise<void> {
  const body = await readJsonBody(req, context.options.bodyLimit);
  const poll = parsePollRequest(body, context.options.maxTopics);
  if (poll.legacy) {
    throw new CometServerError(400, 'bad_request', 'streaming needs protocol version 1 ("v": 1)');
  }
  const controller = new AbortController();
  const signal = controller.signal;
  const stop = (reason: StreamEnd) => {
    if (!signal.aborted) controller.abort(reason);
  };
  const onClose = () => stop('gone');
  res.on('close', onClose);
  context.held.add(controller);
  // Up to 10% early, so streams opened together (after a deploy) do not all reconnect together.
  const capMs = Math.round(context.options.streamMaxTime * (1 - Math.random() * 0.1));
  const cap = setTimeout(() => stop('cap'), capMs);
  let heartbeat: ReturnType<typeof setInterval> | undefined;
  try {
    await runSubscription(context, poll, req, signal, {
      open: (payload) => {
        if (signal.aborted) return Promise.resolve();
        res.writeHead(200, STREAM_HEADERS);
        heartbeat = setInterval(() => {
          if (!signal.aborted) res.write(': hb\n\n');
        }, context.options.heartbeatInterval);
        return write(res, event('open', payload), signal);
      },
      messages: (payload) => write(res, event('messages', payload), signal),
    });
    if (!res.headersSent) {
      if (signal.reason === 'gone') return;
      // Drained (or capped) before it opened: the client retries, here or elsewhere.
      throw new CometServerError(503, 'unavailable', 'the server is shutting down; retry');
    }
    // Every topic refused: `open` said so, and there is nothing to wait for.
    if (!signal.aborted) stop('cap');
  } finally {
    clearTimeout(cap);
    if (heartbeat !== undefined) clearInterval(heartbeat);
    context.held.delete(controller);
    res.off('close', onClose);
    if (res.headersSent && !res.writableEnded && !res.destroyed) res.end();
  }
}
