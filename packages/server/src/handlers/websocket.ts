/**
 * `{base}/_ws`: the WebSocket transport. Takes upgrades (path, drain and origin checks), then
 * frames: `poll` runs a subscription (its `open` carries the idle timeout in `timings`), `send`
 * runs a send answered `ack`/`nack`, `ping` answers `pong`. An idle socket is terminated.
 * The `headers` of `poll` and `send` frames are the socket's credentials from then on (see
 * `engine/credentials.ts`); `disconnect()` closes a socket with 4001.
 * What is written back, with backpressure, is in `websocket-output.ts`; `send` frames are in
 * `websocket-send.ts`.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WEBSOCKET_PATH } from '@cometkit/core/protocol';
import type { RawData, WebSocket, WebSocketServer } from 'ws';
import type { EngineContext } from '../engine/context';
import {
  type Caller,
  type Credentials,
  credentialsOf,
  type FrameHeaders,
  parseFrameHeaders,
} from '../engine/credentials';
import { type Frame, parseFrame, parsePollRequest, type ValidPoll } from '../engine/request';
import { encodeMessagesPayload, runSubscription } from '../engine/subscription';
import { isBrokerUnavailable, isCometServerError, toServerError } from '../errors';
import { subPath } from '../http';
import { reportDelivered } from '../observer';
import { originAllowed, refuse } from './upgrade';
import {
  CLOSE_CODES,
  CLOSE_GRACE_MS,
  createSocketOutput,
  type ErrorFrame,
  errorOf,
  retryAfterOf,
} from './websocket-output';
import { createSendFrames } from './websocket-send';

export { CLOSE_CODES, type ErrorFrame } from './websocket-output';

/** Serves `{base}/_ws`. */
export interface WebSocketHub {
  /** Takes an `upgrade`: the protocol's socket at `{base}/_ws`, an HTTP error otherwise. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void;
  /** Loads `ws` now (upgrades will come: `attach()`), so the first one does not wait for it. */
  prepare(): void;
  /** Closes every socket with 1012 once its pending sends are answered. */
  close(): Promise<void>;
  /** Destroys every socket at once (a drain past its timeout). */
  terminate(): void;
  /** Open sockets. */
  size(): number;
}

/** Makes the WebSocket side of a server: `isDraining` refuses new sockets with 503. */
export function createWebSocketHub(
  context: EngineContext,
  isDraining: () => boolean,
): WebSocketHub {
  const options = context.options;
  const log = options.log;
  // `ws` is loaded at the first upgrade (or `attach()`), not with the server: a server that
  // serves only long-polls and streams does not pay for the module (a few MB of RSS).
  let wss: WebSocketServer | undefined;
  let loading: Promise<WebSocketServer> | undefined;
  const load = () => {
    loading ??= import('ws').then((ws) => {
      // `maxPayload`: a larger frame closes the socket with 1009 before it is even buffered whole.
      wss = new ws.WebSocketServer({
        noServer: true,
        maxPayload: options.bodyLimit,
        clientTracking: false,
      });
      return wss;
    });
    return loading;
  };
  const connections = new Set<{ shutdown(): Promise<void>; terminate(): void }>();
  const timings = { idleTimeout: options.webSocketIdleTimeout };

  const connect = (ws: WebSocket, req: IncomingMessage) => {
    let subscription: AbortController | undefined;
    let sessionGuid: string | undefined;
    let userId: string | undefined;
    let shuttingDown: Promise<void> | undefined;
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
    const { closeWith, send, reply } = createSocketOutput(ws, options);
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
    const sendFrames = createSendFrames(context, {
      output: { closeWith, send, reply },
      shuttingDown: () => shuttingDown !== undefined,
      session: () => ({ sessionGuid, userId }),
      setHeaders,
      credentials: () => credentialsReady,
      bad,
      good: () => {
        badStreak = 0;
      },
      badFrame,
    });
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
        await Promise.allSettled([...sendFrames.inFlight]);
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
    const live = {
      who: () => ({ identity: credentials.identity, sessionGuid, userId }),
      revoke: () => {
        stopSubscription();
        if (ws.readyState !== ws.OPEN) return;
        const force = setTimeout(() => ws.terminate(), CLOSE_GRACE_MS);
        ws.once('close', () => clearTimeout(force));
        ws.close(CLOSE_CODES.revoked, 'disconnected by the server');
      },
    };
    context.connections.add(live);

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
          return sendFrames.start(frame);
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
      context.connections.remove(live);
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
      const upgrade = (server: WebSocketServer) => {
        // The socket may have gone while `ws` was loading.
        if (socket.destroyed) return;
        server.handleUpgrade(req, socket, head, (ws) => {
          socket.off('error', onError);
          if (isDraining()) {
            ws.close(CLOSE_CODES.serviceRestart, 'server restarting: reconnect');
            return;
          }
          connect(ws, req);
        });
      };
      if (wss !== undefined) return upgrade(wss);
      load().then(upgrade, (error: unknown) => {
        log({
          level: 'error',
          event: 'upgrade.failed',
          message: 'the WebSocket module could not be loaded',
          error,
        });
        socket.destroy();
      });
    },

    prepare() {
      load().catch(() => {
        // Logged at the upgrade that needs it.
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
