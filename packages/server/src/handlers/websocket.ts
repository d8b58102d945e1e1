/**
 * `{base}/_ws`: the WebSocket transport. Takes upgrades (path, drain and origin checks), then
 * frames: `poll` runs a subscription (its `open` carries the idle timeout in `timings`), `send`
 * runs a send answered `ack`/`nack`, `ping` answers `pong`. An idle socket is terminated.
 * The `headers` of `poll` and `send` frames are the socket's credentials from then on (see
 * `engine/credentials.ts`); `disconnect()` closes a socket with 4001.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { type ErrorBody, WEBSOCKET_PATH } from '@cometkit/core/protocol';
import { type RawData, type WebSocket, WebSocketServer } from 'ws';
import type { EngineContext } from '../engine/context';
import {
  type Caller,
  type Credentials,
  credentialsOf,
  type FrameHeaders,
  parseFrameHeaders,
} from '../engine/credentials';
import {
  type Frame,
  parseFrame,
  parsePollRequest,
  parseSendFrame,
  requireSendId,
  type ValidPoll,
  type ValidSend,
} from '../engine/request';
import { performSend, type SendOutcome } from '../engine/send';
import { encodeMessagesPayload, runSubscription } from '../engine/subscription';
import { isBrokerUnavailable, isCometServerError, toServerError } from '../errors';
import { subPath } from '../http';
import { reportDelivered } from '../observer';
import { originAllowed, refuse } from './upgrade';

/** WebSocket close codes the server uses (RFC 6455 §7.4 and the IANA registry). */
export const CLOSE_CODES = {
  /** A binary frame: the protocol is text frames of JSON. */
  unsupportedData: 1003,
  /** `maxBadFrames` bad frames in a row. */
  policyViolation: 1008,
  /** A frame larger than `bodyLimit` (closed by `ws` itself). */
  tooLarge: 1009,
  /** The broker failed while the socket was open: reconnect (maybe elsewhere). */
  internalError: 1011,
  /** The server drains (`close()`) or its broker failed: reconnect, elsewhere. */
  serviceRestart: 1012,
  /** `disconnect()` ended the socket: reconnect, and `authorize` decides again. */
  revoked: 4001,
  /** The client left more than `maxBufferedBytes` unread: reconnect later. */
  tryAgainLater: 1013,
} as const;

// After a close frame, how long a client gets to answer before its socket is destroyed.
const CLOSE_GRACE_MS = 1000;

// Replies (pong, error, nack) written but not yet taken by the OS: a client that keeps this many
// unread is not reading, and each queued write costs heap beyond its bytes, so it is closed.
const MAX_UNFLUSHED_REPLIES = 1024;

/** The `error` frame: a frame the server could not act on (the socket stays open). */
export interface ErrorFrame {
  type: 'error';
  error: ErrorBody['error'];
  /** Seconds before a poll over the rate limit may be sent again. */
  retryAfter?: number;
}

/** Serves `{base}/_ws`. */
export interface WebSocketHub {
  /** Takes an `upgrade`: the protocol's socket at `{base}/_ws`, an HTTP error otherwise. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void;
  /** Closes every socket with 1012 once its pending sends are answered. */
  close(): Promise<void>;
  /** Destroys every socket at once (a drain past its timeout). */
  terminate(): void;
  /** Open sockets. */
  size(): number;
}

function errorOf(error: unknown): ErrorBody['error'] {
  const known = toServerError(error);
  if (known) return { code: known.code, message: known.message };
  return { code: 'internal', message: 'the server could not handle the frame' };
}

/** The `retryAfter` (seconds) of a frame answering `error`: for a 429 and a 503 only. */
function retryAfterOf(error: unknown, fallback: number): { retryAfter?: number } {
  const known = toServerError(error);
  if (known?.status !== 429 && known?.status !== 503) return {};
  return { retryAfter: known.retryAfter ?? fallback };
}

/** Makes the WebSocket side of a server: `isDraining` refuses new sockets with 503. */
export function createWebSocketHub(
  context: EngineContext,
  isDraining: () => boolean,
): WebSocketHub {
  const options = context.options;
  const log = options.log;
  // `maxPayload`: a larger frame closes the socket with 1009 before it is even buffered whole.
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: options.bodyLimit,
    clientTracking: false,
  });
  const connections = new Set<{ shutdown(): Promise<void>; terminate(): void }>();
  const timings = { idleTimeout: options.webSocketIdleTimeout };

  const connect = (ws: WebSocket, req: IncomingMessage) => {
    let subscription: AbortController | undefined;
    let sessionGuid: string | undefined;
    let userId: string | undefined;
    let shuttingDown: Promise<void> | undefined;
    const sends = new Set<Promise<void>>();
    // The socket's credentials: the upgrade request's, then with the latest frame headers.
    // Updated in frame order, so a frame that follows new headers is checked with them.
    let credentials: Credentials = { req, identity: undefined };
    const adopt = (given: Credentials) => {
      credentials = given;
      return given;
    };
    let credentialsReady: Promise<Credentials> = credentialsOf(options, req).then(adopt);
    const setHeaders = (headers: FrameHeaders | undefined) => {
      if (headers === undefined) return;
      credentialsReady = credentialsReady.then(() =>
        credentialsOf(options, req, headers).then(adopt),
      );
    };
    const caller = (): Caller => ({ ...credentials, sessionGuid, userId });

    let badStreak = 0;
    /** The sends in flight on this socket by id: a repeat joins the first, not the broker. */
    const sendIds = new Map<string, Promise<SendOutcome>>();

    /** Closes the socket with `code`; one that does not answer the close frame is destroyed. */
    const closeWith = (code: number, reason: string) => {
      if (ws.readyState !== ws.OPEN) return;
      ws.close(code, reason);
      const force = setTimeout(() => ws.terminate(), CLOSE_GRACE_MS);
      ws.once('close', () => clearTimeout(force));
    };
    /**
     * True when `text` may be queued: a client that leaves more than `maxBufferedBytes` unread
     * is closed instead, so nothing the server writes to it (answers, errors, pongs) piles up.
     */
    const room = (text: string): boolean => {
      if (ws.readyState !== ws.OPEN) return false;
      if (ws.bufferedAmount + text.length <= options.maxBufferedBytes) return true;
      log({
        level: 'warn',
        event: 'websocket.slow',
        message: `more than ${options.maxBufferedBytes} bytes unread: closed`,
      });
      closeWith(CLOSE_CODES.tryAgainLater, 'too much unread: reconnect');
      return false;
    };
    const send = (frame: object | string): Promise<void> => {
      const text = typeof frame === 'string' ? frame : JSON.stringify(frame);
      if (!room(text)) return Promise.resolve();
      // Resolves once written, so a subscription does not read ahead of a slow client.
      return new Promise((resolve) => ws.send(text, () => resolve()));
    };
    let unflushed = 0;
    const flushed = () => {
      unflushed -= 1;
    };
    /** A reply nobody waits for (pong, error, nack): queued only while the client reads. */
    const reply = (frame: object) => {
      const text = JSON.stringify(frame);
      if (!room(text)) return;
      if (unflushed >= MAX_UNFLUSHED_REPLIES) {
        log({
          level: 'warn',
          event: 'websocket.slow',
          message: `${unflushed} replies unread: closed`,
        });
        closeWith(CLOSE_CODES.tryAgainLater, 'too much unread: reconnect');
        return;
      }
      unflushed += 1;
      ws.send(text, flushed);
    };
    /** A frame the server could not take: `maxBadFrames` of them in a row close the socket. */
    const bad = () => {
      badStreak += 1;
      if (badStreak < options.maxBadFrames) return true;
      log({
        level: 'warn',
        event: 'websocket.bad_frames',
        message: `${badStreak} bad frames in a row: closed`,
      });
      closeWith(CLOSE_CODES.policyViolation, 'too many bad frames');
      return false;
    };
    const sendError = (code: string, message: string, extra: { retryAfter?: number } = {}) => {
      const frame: ErrorFrame = { type: 'error', error: { code, message }, ...extra };
      reply(frame);
    };
    /** The `error` frame of a bad frame (counted towards `maxBadFrames`). */
    const badFrame = (message: string) => {
      if (bad()) sendError('bad_request', message);
    };
    const observer = context.observer;
    observer?.connection('websocket', 'open');

    const idle = setTimeout(() => {
      log({
        level: 'info',
        event: 'websocket.idle',
        message: `no frame for ${options.webSocketIdleTimeout} ms: terminated`,
      });
      ws.terminate();
    }, options.webSocketIdleTimeout);
    const alive = () => idle.refresh();

    const stopSubscription = () => {
      if (!subscription) return;
      subscription.abort('replaced');
      context.held.delete(subscription);
      subscription = undefined;
    };

    const shutdown = (): Promise<void> => {
      shuttingDown ??= (async () => {
        stopSubscription();
        // Sends already taken are answered before the socket closes.
        await Promise.allSettled([...sends]);
        if (ws.readyState === ws.CLOSED) return;
        await new Promise<void>((resolve) => {
          ws.once('close', () => resolve());
          const force = setTimeout(() => ws.terminate(), CLOSE_GRACE_MS);
          ws.once('close', () => clearTimeout(force));
          ws.close(CLOSE_CODES.serviceRestart, 'server restarting: reconnect');
        });
      })();
      return shuttingDown;
    };
    const connection = { shutdown, terminate: () => ws.terminate() };
    connections.add(connection);
    const unregister = context.connections.add({
      who: () => ({ identity: credentials.identity, sessionGuid, userId }),
      revoke: () => {
        stopSubscription();
        if (ws.readyState !== ws.OPEN) return;
        const force = setTimeout(() => ws.terminate(), CLOSE_GRACE_MS);
        ws.once('close', () => clearTimeout(force));
        ws.close(CLOSE_CODES.revoked, 'disconnected by the server');
      },
    });

    const startPoll = (frame: Frame) => {
      stopSubscription();
      let poll: ValidPoll;
      let headers: FrameHeaders | undefined;
      try {
        poll = parsePollRequest(frame, options.maxTopics, options.maxDepth);
        headers = parseFrameHeaders(frame.headers);
      } catch (error) {
        return badFrame(errorOf(error).message);
      }
      if (poll.legacy) return badFrame('poll frames need "v": 1');
      badStreak = 0;
      sessionGuid = poll.sessionGuid;
      userId = poll.userId;
      setHeaders(headers);
      const controller = new AbortController();
      subscription = controller;
      context.held.add(controller);
      const signal = controller.signal;
      const ready = credentialsReady;
      const subscribe = async () => {
        await ready;
        // A poll frame counts as a request; over the limit it gets an `error` frame (below).
        await context.limits?.request(caller());
        if (signal.aborted) return;
        await runSubscription(context, poll, caller, signal, {
          open: (payload) => send({ type: 'open', ...payload, timings }),
          messages: (payload) => {
            if (observer) reportDelivered(observer, 'websocket', payload.messages);
            return send(encodeMessagesPayload({ type: 'messages' }, payload));
          },
        });
      };
      subscribe()
        .then(
          () => {
            // Aborted by the server (drain, broker failure), not replaced by the client.
            if (signal.reason === 'drain') void shutdown();
          },
          (error: unknown) => {
            if (isCometServerError(error) && error.status === 429) {
              const { code, message } = errorOf(error);
              return sendError(code, message, retryAfterOf(error, options.retryAfter));
            }
            log({
              level: 'error',
              event: 'websocket.failed',
              message: 'the subscription failed; the socket is closed',
              error,
            });
            if (ws.readyState !== ws.OPEN) return;
            // A broker outage (or a hook that timed out) is temporary: 1012 tells the client to
            // reconnect (maybe elsewhere).
            if (isBrokerUnavailable(error) || toServerError(error)?.status === 503) {
              ws.close(CLOSE_CODES.serviceRestart, 'message broker unavailable: reconnect');
            } else ws.close(CLOSE_CODES.internalError, 'internal error');
          },
        )
        .finally(() => {
          context.held.delete(controller);
          if (subscription === controller) subscription = undefined;
        });
    };

    const startSend = (frame: Frame) => {
      let id: string;
      try {
        id = requireSendId(frame.id);
      } catch (error) {
        // Without a usable id there is nothing a nack could name.
        return badFrame(errorOf(error).message);
      }
      const nack = (code: string, message: string, extra: { retryAfter?: number } = {}) =>
        send({ type: 'nack', id, error: { code, message }, ...extra });
      /** A nack answered at once (nothing waits for it): queued only while the client reads. */
      const nackNow = (code: string, message: string, extra: { retryAfter?: number } = {}) =>
        reply({ type: 'nack', id, error: { code, message }, ...extra });
      if (shuttingDown) {
        return nackNow('unavailable', 'the server is shutting down; retry', {
          retryAfter: options.retryAfter,
        });
      }
      let parsed: ValidSend;
      try {
        parsed = parseSendFrame(frame, { sessionGuid, userId });
        setHeaders(parseFrameHeaders(frame.headers));
      } catch (error) {
        if (!bad()) return;
        const { code, message } = errorOf(error);
        return nackNow(code, message);
      }
      badStreak = 0;
      if (sends.size >= options.maxSendsInFlight) {
        context.observer?.limited('sends');
        return nackNow(
          'rate_limited',
          `at most ${options.maxSendsInFlight} sends in flight per socket; wait for their answers`,
          { retryAfter: options.retryAfter },
        );
      }
      // The same send again while the first is in flight: the first one's outcome answers it.
      const joined = sendIds.get(id);
      const outcome =
        joined ??
        credentialsReady.then((given) =>
          performSend(
            context,
            { ...given, sessionGuid: parsed.sessionGuid, userId: parsed.userId },
            parsed,
          ),
        );
      if (!joined) sendIds.set(id, outcome);
      const task = outcome
        .then(
          (done) => send({ type: 'ack', id, messageId: done.messageId }),
          (error: unknown) => {
            if (!isCometServerError(error) && !isBrokerUnavailable(error)) {
              log({
                level: 'error',
                event: 'websocket.send_failed',
                message: 'unexpected error while handling a send frame',
                error,
              });
            }
            const { code, message } = errorOf(error);
            return nack(code, message, retryAfterOf(error, options.retryAfter));
          },
        )
        .finally(() => {
          sends.delete(task);
          if (sendIds.get(id) === outcome) sendIds.delete(id);
        });
      sends.add(task);
    };

    ws.on('message', (data: RawData, isBinary: boolean) => {
      alive();
      // Closing (slow reader, bad frames, drain): what still arrives is not acted on.
      if (ws.readyState !== ws.OPEN) return;
      if (isBinary) {
        ws.close(CLOSE_CODES.unsupportedData, 'text frames of JSON only');
        return;
      }
      let frame: Frame;
      try {
        frame = parseFrame(data.toString(), options.maxDepth);
      } catch (error) {
        return badFrame(errorOf(error).message);
      }
      switch (frame.type) {
        case 'ping':
          badStreak = 0;
          return reply({ type: 'pong' });
        case 'poll':
          return startPoll(frame);
        case 'send':
          return startSend(frame);
        default:
          return badFrame(
            `unknown frame type ${JSON.stringify(String(frame.type).slice(0, 40))}; expected poll, send or ping`,
          );
      }
    });
    ws.on('ping', alive);
    ws.on('pong', alive);
    ws.on('error', (error) => {
      // `ws` closes the socket itself (1009 for too large, 1002/1007 for bad frames).
      log({ level: 'warn', event: 'websocket.error', message: error.message, error });
    });
    ws.on('close', () => {
      observer?.connection('websocket', 'close');
      clearTimeout(idle);
      stopSubscription();
      connections.delete(connection);
      unregister();
    });
  };

  return {
    handleUpgrade(req, socket, head) {
      // A socket error before `ws` takes over must not become an uncaught exception.
      const onError = () => socket.destroy();
      socket.on('error', onError);
      if (subPath(req, options.path) !== WEBSOCKET_PATH) {
        return refuse(socket, 404, 'not_found', 'no WebSocket endpoint here');
      }
      if (isDraining()) {
        return refuse(socket, 503, 'unavailable', 'the server is shutting down; retry', {
          'Retry-After': String(options.retryAfter),
        });
      }
      if (!originAllowed(req, options)) {
        log({
          level: 'warn',
          event: 'websocket.refused',
          message: 'origin not allowed',
          origin: req.headers.origin,
        });
        return refuse(socket, 403, 'forbidden', 'this origin may not open a WebSocket here');
      }
      wss.handleUpgrade(req, socket, head, (ws) => {
        socket.off('error', onError);
        if (isDraining()) {
          ws.close(CLOSE_CODES.serviceRestart, 'server restarting: reconnect');
          return;
        }
        connect(ws, req);
      });
    },

    async close() {
      await Promise.allSettled([...connections].map((connection) => connection.shutdown()));
    },

    terminate() {
      for (const connection of connections) connection.terminate();
    },

    size() {
      return connections.size;
    },
  };
}
