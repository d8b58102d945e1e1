/**
 * `createCometServer`: wires the engine's shared state (broker, read cache, wake batcher, hold
 * timer, drain set) to the router and the WebSocket hub, and owns the public API, metrics hooks
 * and the server's stats. Routing is in `engine/routes.ts`, error answers in
 * `engine/answer-error.ts`, draining in `engine/drain.ts`, publishing in
 * `engine/server-publish.ts`.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Broker, BrokerMessage } from './broker';
import { createMemoryBroker } from './brokers/memory';
import { createErrorAnswer } from './engine/answer-error';
import {
  createConnectionRegistry,
  createControlChannel,
  parseDisconnectFilter,
} from './engine/connections';
import type { Abortable, EngineContext } from './engine/context';
import { drain as drainTargets } from './engine/drain';
import { createHoldTimer } from './engine/hold-timer';
import { createPresenceKeeper } from './engine/presence';
import { createReadCache } from './engine/read';
import { assertTopic, badRequest } from './engine/request';
import { createRouter, routeName } from './engine/routes';
import { createServerPublish } from './engine/server-publish';
import { createSessionHolds } from './engine/session-holds';
import { createWakeBatcher } from './engine/wake';
import { CometServerError } from './errors';
import { createWebSocketHub } from './handlers/websocket';
import { sendError, subPath } from './http';
import { observeAuthorize, observeBroker, type RouteName } from './observer';
import { type CometServerOptions, type DisconnectFilter, resolveServerOptions } from './options';
import { type PublishOptions, publishIdProblem } from './publish';
import { handlePublishApi } from './publish-api';
import { createRateLimiter } from './rate-limit';

/** A `next` callback as Express/Connect pass it. */
export type NextFunction = (error?: unknown) => void;

/** Counts for monitoring and tests. */
export interface CometServerStats {
  /** Polls being held or answered right now. */
  held: number;
  /**
   * Requests waiting for a publish right now (a handshake being answered is not one): a
   * message published now reaches every one of them.
   */
  waiting: number;
  /** Requests being handled (polls and sends). */
  inFlight: number;
  /** True once `close()` was called. */
  draining: boolean;
  /** Open streams (`{path}/_stream`); each also counts in `held` and `inFlight`. */
  streams: number;
  /** Open WebSockets (`{path}/_ws`). */
  sockets: number;
}

/**
 * What {@link CometServer.attach} needs: a `node:http` or `node:https` server (Express's
 * `app.listen()` and Fastify's `fastify.server` are ones).
 */
export interface UpgradeSource {
  on(
    event: 'upgrade',
    listener: (req: IncomingMessage, socket: Duplex, head: Buffer) => void,
  ): unknown;
  off(
    event: 'upgrade',
    listener: (req: IncomingMessage, socket: Duplex, head: Buffer) => void,
  ): unknown;
}

/** Options of {@link CometServer.close}. */
export interface CloseOptions {
  /**
   * How long to wait for in-flight requests and sockets before cutting them off, in ms.
   * @default 10_000
   */
  timeout?: number;
}

/** A server from {@link createCometServer}. */
export interface CometServer {
  /**
   * The request handler: serves the paths under `path` and passes the rest to `next` (or
   * answers `404`). Works as a `node:http` handler and as Express/Connect middleware; it
   * never throws and never rejects.
   */
  handle(req: IncomingMessage, res: ServerResponse, next?: NextFunction): void;
  /**
   * Serves WebSocket upgrades of `server` at `{path}/_ws`. Upgrades outside `path` are left
   * alone, so other upgrade handlers (a dev server's hot reload…) keep working. Returns the
   * function that detaches.
   */
  attach(server: UpgradeSource): () => void;
  /**
   * Takes one `upgrade` event (when you route upgrades yourself): the protocol's WebSocket at
   * `{path}/_ws`; `404` elsewhere, `403` for a cross-origin `Origin` not allowed by `cors.origins`, `503` while
   * draining. Never throws.
   */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void;
  /**
   * Publishes `data` to `topic` (from your own code, e.g. a job); resolves with the message id.
   * With `options.id`, publishes once per id within `idempotencyTtl` (a retry answers the first
   * message id), as the publish API and the Redis publisher do.
   */
  publish(topic: string, data: unknown, options?: PublishOptions): Promise<string>;
  /**
   * The publish API as a handler of its own, answering at any path it is mounted on (e.g. an
   * internal port that the load balancer does not expose): a `node:http` handler or
   * Express/Connect middleware. Undefined unless the `publishApi` option is set.
   */
  readonly publishHandler:
    | ((req: IncomingMessage, res: ServerResponse, next?: NextFunction) => void)
    | undefined;
  /**
   * Revocation: ends the connections and held requests that `filter` matches (by the identity
   * from your `identify` hook, the session, or the client's user id), on this instance at once
   * and on every instance sharing the broker (a control message through it). A held long-poll
   * is answered `reconnect`, a stream ends, a WebSocket closes with 4001; the client
   * reconnects and `authorize` decides again, so make it refuse first (mark the session
   * revoked), then call this. Resolves with the number of local connections ended, once the
   * control message is published; rejects with `400` for an empty or bad filter.
   */
  disconnect(filter: DisconnectFilter): Promise<number>;
  /** The last `limit` messages of `topic` still in history and the position after them. */
  recent(topic: string, limit?: number): Promise<{ messages: BrokerMessage[]; position: string }>;
  /**
   * Drains: every held poll is answered at once with `reconnect` and its cursors, streams end,
   * WebSockets close with code 1012 once their pending sends are answered, body reads still
   * going on stop with `503`, later requests and upgrades get `503` with `Retry-After`.
   * Resolves when in-flight requests are done, or after `timeout` ms, when whatever is left
   * (a hook that never answers, a socket that does not close) is cut off (and then the broker
   * closed, if the server made it).
   */
  close(options?: CloseOptions): Promise<void>;
  /** The broker in use. */
  readonly broker: Broker;
  /** Counts for monitoring and tests. */
  stats(): CometServerStats;
}

/**
 * Creates the reference cometkit server: stateless between requests (everything is in the
 * request and the broker), so any instance behind a load balancer can answer any request.
 */
export function createCometServer(options: CometServerOptions = {}): CometServer {
  const resolved = resolveServerOptions(options);
  const ownsBroker = options.broker === undefined;
  const givenBroker = options.broker ?? createMemoryBroker();
  const metrics = options.metrics?.observe({ stats: () => stats() });
  const observer = metrics?.observer;
  // With metrics, the broker and the authorize hook are wrapped to time and count; without,
  // nothing changes on the request path.
  const broker = observer ? observeBroker(givenBroker, observer) : givenBroker;
  if (observer && resolved.authorize) {
    resolved.authorize = observeAuthorize(resolved.authorize, observer);
  }
  const limits = createRateLimiter(options.rateLimit, resolved.log, observer?.limited);
  const connections = createConnectionRegistry();
  // Revocations from other instances sharing the broker.
  const control = createControlChannel(
    broker,
    (filter) => {
      const ended = connections.revokeMatching(filter);
      if (ended > 0) {
        resolved.log({
          level: 'info',
          event: 'connections.revoked',
          message: `${ended} connection(s) ended by another instance's disconnect()`,
          ended,
        });
      }
    },
    resolved.log,
  );
  // One listener for every answer (no closure per request: a held poll carries only its route).
  const onAnswered =
    observer &&
    function (this: RoutedResponse) {
      observer.answered(this[ANSWER_ROUTE] ?? 'other', this.statusCode);
    };
  const observeAnswer = (res: ServerResponse, route: RouteName) => {
    if (!onAnswered) return;
    (res as RoutedResponse)[ANSWER_ROUTE] = route;
    res.on('finish', onAnswered);
  };
  const presence =
    resolved.presence && createPresenceKeeper(broker, resolved.presence, resolved.log);
  const held = new Set<Abortable>();
  const counters = { waiting: 0 };
  const inFlight = new Set<Promise<void>>();
  // Responses not finished yet: what a drain cuts off once its timeout has passed.
  const open = new Set<ServerResponse>();
  // One listener for every response (`close` fires once per response), not a closure each.
  const forgetOpen = function (this: ServerResponse) {
    open.delete(this);
  };
  const drain = new AbortController();
  const log = resolved.log;
  let draining = false;
  let closing: Promise<void> | undefined;

  const { publish, publishWithId, publishFromApi } = createServerPublish(
    broker,
    resolved,
    presence,
    limits,
  );

  const wakeAll = () => {
    for (const controller of [...held]) controller.abort('drain');
  };
  // A broker that loses its store answers held polls so clients retry (maybe elsewhere).
  const stopBrokerErrors = broker.onError?.((error) => {
    log({ level: 'error', event: 'broker.error', message: 'the broker failed', error });
    wakeAll();
  });

  const fail = createErrorAnswer(resolved, observer);

  const track = (task: Promise<void>) => {
    inFlight.add(task);
    task.then(
      () => inFlight.delete(task),
      () => inFlight.delete(task),
    );
  };
  const context: EngineContext = {
    broker,
    options: resolved,
    held,
    connections,
    holds: createHoldTimer(),
    publish,
    reads: createReadCache(broker, resolved.batchLimit),
    counters,
    wakes: createWakeBatcher(resolved.coalesceMs),
    track,
    fail,
    observer,
    limits,
    sessions: createSessionHolds(resolved.maxHeldPerSession, resolved.retryAfter),
    drain: drain.signal,
    presence,
  };
  const hub = createWebSocketHub(context, () => draining);

  const router = createRouter(context, publishFromApi, () => draining);

  return {
    broker: givenBroker,

    handle(req, res, next) {
      const rest = subPath(req, resolved.path);
      if (rest === undefined) {
        if (next) next();
        else sendError(res, 404, 'not_found', 'not found');
        return;
      }
      if (onAnswered) observeAnswer(res, routeName(rest));
      open.add(res);
      res.on('close', forgetOpen);
      track(
        router
          .route(req, res, rest)
          .catch((error: unknown) => fail(req, res, error))
          .catch(() => {}),
      );
    },

    publishHandler: resolved.publishApi
      ? (req, res) => {
          const api = resolved.publishApi;
          if (!api) return;
          observeAnswer(res, 'publish');
          track(
            (async () => {
              if (draining) {
                throw new CometServerError(
                  503,
                  'unavailable',
                  'the server is shutting down; retry',
                );
              }
              await handlePublishApi(api, publishFromApi, req, res);
            })()
              .catch((error: unknown) => fail(req, res, error))
              .catch(() => {}),
          );
        }
      : undefined,

    attach(server) {
      const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer) => {
        if (subPath(req, resolved.path) !== undefined) hub.handleUpgrade(req, socket, head);
      };
      server.on('upgrade', onUpgrade);
      hub.prepare();
      return () => {
        server.off('upgrade', onUpgrade);
      };
    },

    handleUpgrade(req, socket, head) {
      try {
        hub.handleUpgrade(req, socket, head);
      } catch (error) {
        log({
          level: 'error',
          event: 'upgrade.failed',
          message: 'unexpected error while handling an upgrade',
          error,
        });
        socket.destroy();
      }
    },

    publish(topic, data, publishOptions) {
      const id = publishOptions?.id;
      if (id === undefined) return publish(topic, data);
      const problem = publishIdProblem(id);
      if (problem !== undefined) {
        return Promise.reject(badRequest(problem));
      }
      return publishWithId(topic, data, id);
    },

    async disconnect(filter) {
      const valid = parseDisconnectFilter(filter);
      const ended = connections.revokeMatching(valid);
      log({
        level: 'info',
        event: 'connections.revoked',
        message: `disconnect(): ${ended} connection(s) ended here; telling the other instances`,
        ended,
      });
      await control.broadcast(valid);
      return ended;
    },

    async recent(topic, limit = 50) {
      assertTopic(topic);
      if (!Number.isInteger(limit) || limit < 0) {
        throw badRequest(`limit must be an integer >= 0, got ${limit}`);
      }
      return broker.recent(topic, limit);
    },

    close(closeOptions) {
      const timeout = closeOptions?.timeout ?? 10_000;
      if (!Number.isFinite(timeout) || timeout < 0) {
        return Promise.reject(
          new TypeError(`close: timeout must be a number of ms >= 0, got ${String(timeout)}`),
        );
      }
      closing ??= (async () => {
        draining = true;
        await drainTargets(
          {
            log,
            held,
            wake: () => {
              drain.abort();
              wakeAll();
            },
            sockets: hub,
            inFlight,
            open,
          },
          timeout,
        );
        stopBrokerErrors?.();
        control.close();
        presence?.close();
        metrics?.stop();
        if (ownsBroker) await givenBroker.close();
      })();
      return closing;
    },

    stats,
  };

  function stats(): CometServerStats {
    return {
      held: held.size,
      waiting: counters.waiting,
      inFlight: inFlight.size,
      draining,
      streams: router.streams(),
      sockets: hub.size(),
    };
  }
}

/** Where a response keeps its route for the answer-status metric. */
const ANSWER_ROUTE = Symbol('cometkit.route');
type RoutedResponse = ServerResponse & { [ANSWER_ROUTE]?: RouteName };
