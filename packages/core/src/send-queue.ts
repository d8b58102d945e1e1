/**
 * Sends: one at a time, in order, each retried with the same id (the server drops a repeat).
 * A send goes as a frame over the open WebSocket when there is one, else as
 * `POST {base}/{topic}`; `policy.ts` decides what a failure means, as for polls. A send to a
 * topic whose handshake is under way waits for it (read your own writes); one that outlives
 * `sendTimeout` is given up.
 */
import type { ClientContext } from './context';
import {
  ClosedError,
  CometError,
  isHttpError,
  NetworkError,
  QueueFullError,
  TimeoutError,
} from './errors';
import { type HttpAnswer, httpError, networkError } from './http';
import { parseJson } from './parse';
import { classifyFailure, nackError, retryDelay } from './policy';
import type { TopicErrorBody } from './protocol';
import type { TopicRegistry } from './topic-registry';
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
  /** Queues a send; resolves with the broker's id (undefined from a legacy server). */
  send(topic: string, data: unknown): Promise<string | undefined>;
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
  /** Until when it waits for its topic's handshake (it was subscribed before the send). */
  handshake?: number;
  /** The last failure, the cause of a `sendTimeout`. */
  error?: CometError;
  timer?: unknown;
  /** Resolved or rejected, and out of the queue; a try of it still out is ignored. */
  settled?: boolean;
  resolve: (messageId: string | undefined) => void;
  reject: (error: CometError) => void;
}

/**
 * One try: the broker's id, or what went wrong: `fatal` rejects the send, else it is tried
 * again after `delay` (the policy's, or the transport's when it knows better).
 */
type TryResult =
  | { messageId: string | undefined }
  | { error: CometError; delay?: number; fatal?: boolean };

/** A frame that got no reply before its socket went (or in time): sent again at once. */
const lost = (): TryResult => ({ error: new NetworkError('no ack on the WebSocket'), delay: 0 });

/** Makes the queue; `route()` (the connection) is read at each try. */
export function createSendQueue(
  context: ClientContext,
  route: () => SendRoute,
  registry: Pick<TopicRegistry, 'handshaking'>,
): SendQueue {
  const { options, environment: env, events } = context;
  const queue: QueuedSend[] = [];
  let pumping = false;
  let current: QueuedSend | undefined;
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

  /** Takes `item` out of the queue and resolves it, or rejects it with `error`. */
  function settle(item: QueuedSend, error?: CometError, messageId?: string) {
    if (item.settled) return;
    item.settled = true;
    env.clearTimeout(item.timer);
    queue.splice(queue.indexOf(item), 1);
    if (error) item.reject(error);
    else item.resolve(messageId);
  }

  /** `sendTimeout` passed: reject `item`, stop its try if one is out, go on with the next. */
  function expire(item: QueuedSend) {
    const error = new TimeoutError(
      options.sendTimeout,
      { cause: item.error },
      `send to ${item.topic} not accepted within ${options.sendTimeout} ms`,
    );
    settle(item, error);
    if (current === item) {
      postAbort?.abort();
      awaitingReply?.done(lost());
    }
    wakeUp?.();
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
      // Published before the server placed the subscription's position, it would come before
      // it and never reach the sender's own subscription.
      const until = item.handshake ?? 0;
      if (until > env.now() && registry.handshaking(item.topic)) {
        await sleep(until - env.now());
        continue;
      }
      current = item;
      const result = await attempt(item);
      current = undefined;
      if (context.closed) break;
      if (item.settled) continue;
      if ('messageId' in result || result.fatal) {
        if ('messageId' in result) settle(item, undefined, result.messageId);
        else settle(item, result.error);
        continue;
      }
      const { error, delay = 0 } = result;
      item.error = error;
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
    if (answer.status < 200 || answer.status > 299) return { error: httpError(answer, env.now()) };
    const { messageId } = (parseJson(answer.text) ?? {}) as { messageId?: unknown };
    // A 2xx the protocol does not recognise (`{"ok": true}` from a server of the original
    // design) accepted the send: sending it again would publish it again.
    return { messageId: typeof messageId === 'string' ? messageId : undefined };
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
      return new Promise<string | undefined>((resolve, reject) => {
        const item: QueuedSend = {
          topic,
          id,
          data,
          body,
          attempt: 0,
          authTried: false,
          resolve,
          reject,
        };
        if (registry.handshaking(topic)) item.handshake = env.now() + options.openTimeout;
        if (options.sendTimeout)
          item.timer = env.setTimeout(() => expire(item), options.sendTimeout);
        queue.push(item);
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
      for (const item of [...queue]) settle(item, new ClosedError());
      wakeUp?.();
    },
  };
}
