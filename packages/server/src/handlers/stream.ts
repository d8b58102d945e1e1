/**
 * `POST {base}/_stream`: the streaming transport. The poll request answered as Server-Sent
 * Events: the subscription's `open` (with the heartbeat period in `timings`) and `messages`
 * events, a `: hb` comment every `heartbeatInterval`, until the client leaves, the server
 * drains or the stream's time cap.
 */
import type { ServerResponse } from 'node:http';
import type { EngineContext } from '../engine/context';
import { callerOf } from '../engine/credentials';
import { parsePollRequest } from '../engine/request';
import { encodeMessagesPayload, runSubscription } from '../engine/subscription';
import { CometServerError } from '../errors';
import { type FrameworkRequest, readJsonBody } from '../http';
import { reportDelivered } from '../observer';

/** Why a stream ends: the client left, the server drains, the time cap, or `disconnect()`. */
type StreamEnd = 'gone' | 'drain' | 'cap' | 'revoked';

const STREAM_HEADERS = {
  'content-type': 'text/event-stream; charset=utf-8',
  // `no-transform` keeps compression middleware and proxies from holding the events back.
  'cache-control': 'no-cache, no-transform',
  // nginx buffers proxied answers unless told otherwise per response.
  'x-accel-buffering': 'no',
  connection: 'keep-alive',
};

/**
 * One Server-Sent Event (`payload` an object, or JSON text). JSON has no raw line breaks, so
 * one `data:` line is always enough.
 */
function event(name: string, payload: unknown): string {
  const data = typeof payload === 'string' ? payload : JSON.stringify(payload);
  return `event: ${name}\ndata: ${data}\n\n`;
}

/**
 * Writes `text`; when the socket is full, resolves once it drained or the stream ends. A client
 * that leaves more than `limit` bytes unread is cut off (`res.destroy()`): it does not read.
 */
function write(
  res: ServerResponse,
  text: string,
  signal: AbortSignal,
  limit: number,
): Promise<void> {
  if (signal.aborted || res.writableEnded || res.destroyed) return Promise.resolve();
  if (res.writableLength + text.length > limit) {
    res.destroy();
    return Promise.resolve();
  }
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
 * Handles one stream. Errors found before it opens (bad body, too large, draining) are ordinary
 * JSON error answers; after it opens, the stream just ends and the client opens a new one with
 * its cursors. The response's `close` (the client left: the request's own `close` fires as soon
 * as its body is read) stops everything at once: subscription, heartbeat and cap.
 */
export async function handleStream(
  context: EngineContext,
  req: FrameworkRequest,
  res: ServerResponse,
): Promise<void> {
  const body = await readJsonBody(req, context.options.bodyLimit, context.drain);
  const poll = parsePollRequest(body, context.options.maxTopics, context.options.maxDepth);
  if (poll.legacy) {
    throw new CometServerError(400, 'bad_request', 'streaming needs protocol version 1 ("v": 1)');
  }
  const observer = context.observer;
  const caller = await callerOf(context.options, req, poll);
  await context.limits?.request(caller);
  const { heartbeatInterval, streamMaxTime, maxBufferedBytes } = context.options;
  context.sessions.acquire(poll.sessionGuid);
  const controller = new AbortController();
  const signal = controller.signal;
  let heartbeat: ReturnType<typeof setInterval> | undefined;
  const stop = (reason: StreamEnd) => {
    if (heartbeat !== undefined) clearInterval(heartbeat);
    heartbeat = undefined;
    if (!signal.aborted) controller.abort(reason);
  };
  const onClose = () => stop('gone');
  res.on('close', onClose);
  context.held.add(controller);
  const connection = { who: () => caller, revoke: () => stop('revoked') };
  context.connections.add(connection);
  // Up to 10% early, so streams opened together (after a deploy) do not all reconnect together.
  const cap = setTimeout(() => stop('cap'), Math.round(streamMaxTime * (1 - Math.random() * 0.1)));
  try {
    await runSubscription(context, poll, () => caller, signal, {
      open: (payload, listening) => {
        if (signal.aborted) return Promise.resolve();
        res.writeHead(200, STREAM_HEADERS);
        observer?.connection('stream', 'open');
        if (!listening) return write(res, event('open', payload), signal, maxBufferedBytes);
        heartbeat = setInterval(() => {
          if (signal.aborted || res.destroyed) stop('gone');
          else void write(res, ': hb\n\n', signal, maxBufferedBytes);
        }, heartbeatInterval);
        const timings = { heartbeat: heartbeatInterval };
        return write(res, event('open', { ...payload, timings }), signal, maxBufferedBytes);
      },
      messages: (payload) => {
        if (observer) reportDelivered(observer, 'stream', payload.messages);
        const text = event('messages', encodeMessagesPayload({}, payload));
        return write(res, text, signal, maxBufferedBytes);
      },
    });
    if (!res.headersSent) {
      if (signal.reason === 'gone') return;
      // Drained (or capped) before it opened: the client retries, here or elsewhere.
      throw new CometServerError(503, 'unavailable', 'the server is shutting down; retry');
    }
  } finally {
    context.sessions.release(poll.sessionGuid);
    stop('cap');
    clearTimeout(cap);
    if (res.headersSent) observer?.connection('stream', 'close');
    context.held.delete(controller);
    context.connections.remove(connection);
    res.off('close', onClose);
    if (res.headersSent && !res.writableEnded && !res.destroyed) res.end();
  }
}
