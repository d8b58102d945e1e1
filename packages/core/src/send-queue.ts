/**
 * Sends: one at a time, in order, each retried with the same id (the server drops a repeat).
 * A send goes as a frame over the open WebSocket when there is one, else as
 * `POST {base}/{topic}`; `policy.ts` decides what a failure means, as for polls.
 */
import type { ClientContext } from './context';
import {
  ClosedError,
  CometError,
  isHttpError,
  NetworkError,
  ProtocolError,
  QueueFullError,
} from './errors';
import { type HttpAnswer, httpError, networkError } from './http';
import { parseJson } from './parse';
import { classifyFailure, nackError, retryDelay } from './policy';
import type { TopicErrorBody } from './protocol';
import type { TransportHandle } from './transports/types';
import type { ConnectionState } from './types';

/** What the connection tells the send queue. */
export interface SendHooks {
  /** Something changed that may let a paused send go (state, online, reconnect). */
  wake(): void;
  /** The transport behind `handle` is gone: a send waiting for its reply is lost. */
  dropped(handle: TransportHandle): void;
  /** The reply to send frame `id` on `handle`: the broker's id, or the refusal. */
  reply(handle: TransportHandle, id: string, messageId?: string, error?: TopicErrorBody): void;
}

/** The send queue of one client. */
export interface SendQueue extends SendHooks {
  /** Queues a send; resolves with the broker's id. */
  send(topic: string, data: unknown): Promise<string>;
  /** Rejects every waiting send (the client is closing). */
  close(): void;
}

/** What the queue reads from the connection. */
export interface SendRoute {
  getState(): ConnectionState;
  /** The open transport that carries sends, if any. */
  sender(): TransportHandle | undefined;
}

interface QueuedSend {
  topic: string;
  id: string;
  data: unknown;
  body: string;
  /** Retries so far. */
  attempt: number;
  /** The auth hook was asked for this send already. */
  authTried: boolean;
  resolve: (messageId: string) => void;
  reject: (error: CometError) => void;
}

/**
 * One try: the broker's id, or what went wrong: `fatal` rejects the send, else it is tried
 * again after `delay` (the policy's, or the transport's when it knows better).
 */
type TryResult = { messageId: string } | { error: CometError; delay?: number; fatal?: boolean };

/** A frame that got no reply before its socket went (or in time): sent again at once. */
const lost = (): TryResult => ({ error: new NetworkError('no ack on the WebSocket'), delay: 0 });

/** Makes the queue; `route()` (the connection) is read at each try. */
export function createSendQueue(context: ClientContext, route: () => SendRoute): SendQueue {
  const { options, environment: env, events } = context;
  const queue: QueuedSend[] = [];
  let pumping = false;
  let wakeUp: (() => void) | undefined;
  let postAbort: AbortController | undefined;
  let awaitingReply:
    | { handle: TransportHandle; id: string; done: (result: TryResult) => void }
    | undefined;

  /** Waits `ms`, or (undefined) until woken. */
  function sleep(ms?: number) {
    return new Promise<void>((resolve) => {
      const timer = ms === undefined ? undefined : env.setTimeout(() => done(), ms);
      const done = () => {
        env.clearTimeout(timer);
        wakeUp = undefined;
        resolve();
      };
      wakeUp = done;
    });
  }

  function paused() {
    const { status } = route().getState();
    return status === 'offline' || status === 'reconnecting' || !env.online.isOnline();
  }

  async function pump() {
    if (pumping) return;
    pumping = true;
    while (!context.closed && queue.length > 0) {
      const item = queue[0] as QueuedSend;
      if (paused()) {
        await sleep();
        continue;
      }
      const result = await attempt(item);
      if (context.closed) break;
      if ('messageId' in result || result.fatal) {
        queue.shift();
        if ('messageId' in result) item.resolve(result.messageId);
        else item.reject(result.error);
        continue;
      }
      const { error, delay = 0 } = result;
      item.attempt++;
      events.diagnostic(
        'send-retry',
        `send: ${error.message}: retry ${item.attempt} in ${delay} ms`,
        {
          topic: item.topic,
          attempt: item.attempt,
          delayMs: delay,
        },
      );
      if (delay > 0) await sleep(delay);
    }
    pumping = false;
  }

  /** A send over the open WebSocket: `ack` resolves, `nack` is read like the HTTP answer. */
  function sendFrame(item: QueuedSend, handle: TransportHandle): Promise<TryResult> {
    return new Promise((resolve) => {
      // Unanswered: again at once, over whatever is current then.
      const timer = env.setTimeout(() => done(lost()), options.watchdogGrace);
      const done = (result: TryResult) => {
        env.clearTimeout(timer);
        awaitingReply = undefined;
        resolve(result);
      };
      awaitingReply = { handle, id: item.id, done };
      handle.send?.({
        type: 'send',
        topic: item.topic,
        id: item.id,
        data: item.data,
        sessionGuid: context.sessionGuid,
        userId: options.userId,
      });
    });
  }

  /** A send as `POST {base}/{topic}`. */
  async function sendPost(item: QueuedSend, base: string): Promise<TryResult> {
    postAbort = new AbortController();
    let answer: HttpAnswer;
    try {
      answer = await context.post(
        `${base}/${encodeURIComponent(item.topic)}`,
        item.body,
        await context.headers(),
        postAbort.signal,
        // A send that hangs would hold the whole queue: give up and retry it (same id).
        options.watchdogGrace,
      );
    } catch (cause) {
      return { error: networkError(cause) };
    }
    if (answer.status !== 200) return { error: httpError(answer, env.now()) };
    const sent = parseJson(answer.text) as { messageId?: unknown } | null;
    return typeof sent?.messageId === 'string'
      ? { messageId: sent.messageId }
      : { error: new ProtocolError('bad answer: messageId') };
  }

  /** One try of `item`, with the policy's verdict on a failure. */
  async function attempt(item: QueuedSend): Promise<TryResult> {
    const base = context.baseUrl();
    if (base === undefined) return { error: context.badUrl(), fatal: true };
    const handle = route().sender();
    const result = await (handle ? sendFrame(item, handle) : sendPost(item, base));
    if ('messageId' in result) return result;
    const { error } = result;
    const action = classifyFailure('send', error, options.auth !== undefined && !item.authTried);
    if (action === 'auth' && isHttpError(error)) {
      item.authTried = true;
      try {
        if (await context.refreshAuth(error)) return { error, delay: 0 };
      } catch {
        // A throwing hook is a refusal.
      }
      return { error, fatal: true };
    }
    if (action === 'fatal') return { error, fatal: true };
    return {
      error,
      delay: result.delay ?? retryDelay(error, item.attempt + 1, options.backoff, env.random),
    };
  }

  return {
    send(topic, data) {
      let body: string;
      const id = env.randomUUID();
      try {
        if (data === undefined) throw new TypeError('data is undefined');
        body = JSON.stringify({
          v: 1,
          sessionGuid: context.sessionGuid,
          userId: options.userId,
          id,
          data,
        });
      } catch (cause) {
        return Promise.reject(new CometError('data must be JSON', { cause }));
      }
      if (queue.length >= options.sendQueueLimit)
        return Promise.reject(new QueueFullError(options.sendQueueLimit));
      return new Promise<string>((resolve, reject) => {
        queue.push({ topic, id, data, body, attempt: 0, authTried: false, resolve, reject });
        void pump();
      });
    },
    wake: () => wakeUp?.(),
    dropped(handle) {
      if (awaitingReply?.handle === handle) awaitingReply.done(lost());
    },
    reply(handle, id, messageId, error) {
      if (awaitingReply?.handle !== handle || awaitingReply.id !== id) return;
      if (messageId !== undefined) awaitingReply.done({ messageId });
      else awaitingReply.done(error ? { error: nackError(error) } : lost());
    },
    close() {
      postAbort?.abort();
      for (const item of queue.splice(0)) item.reject(new ClosedError());
      wakeUp?.();
    },
  };
}
