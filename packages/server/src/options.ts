/** The options of `createCometServer`, their defaults, and the one place they are validated. */
import type { IncomingMessage } from 'node:http';
import type { TopicErrorBody } from '@cometkit/core/protocol';
import type { Broker } from './broker';
import type { CometMetrics } from './metrics';
import {
  type PublishApiOptions,
  type ResolvedPublishApiOptions,
  resolvePublishApiOptions,
} from './publish-api';
import type { RateLimitOptions } from './rate-limit';

/** What a request asks to do with a topic, for {@link AuthorizeHook}. */
export type AuthorizeAction = 'poll' | 'send' | 'presence';

/** The argument of {@link AuthorizeHook}. */
export interface AuthorizeContext {
  /** The HTTP request (headers, cookies, `req.user` set by your middleware…). */
  req: IncomingMessage;
  /** `presence`: polling `{topic}@presence` (seeing who is on `topic`, and being on it). */
  action: AuthorizeAction;
  topic: string;
  sessionGuid: string | undefined;
  /** As the client says: check it against your own authentication before trusting it. */
  userId: string | undefined;
  /** What your `identify` hook answered for this request (undefined without one). */
  identity: string | undefined;
}

/**
 * Decides whether a request may poll or send to one topic: `true` allows, `false` refuses with
 * `forbidden`, a `{code, message}` refuses with that code (`unauthorized` makes a send a 401).
 * A refused topic in a poll goes into that answer's `errors`; the other topics go on.
 */
export type AuthorizeHook = (
  context: AuthorizeContext,
) => boolean | TopicErrorBody | Promise<boolean | TopicErrorBody>;

/**
 * Says who a request is from, from its verified credentials (a session cookie, a bearer token):
 * a user id, a service name… or undefined for an anonymous request. `req` is the request as
 * every hook sees it: on a WebSocket, the upgrade request with the `headers` of the socket's
 * frames (so `req.headers.authorization` works on every transport). The answer scopes the
 * idempotency keys of sends, is given to `authorize` and `onSend` as `identity`, and is what
 * `disconnect({ identity })` matches.
 */
export type IdentifyHook = (
  req: IncomingMessage,
) => string | undefined | Promise<string | undefined>;

/** Which connections {@link CometServer.disconnect} ends; every given field must match. */
export interface DisconnectFilter {
  /** The identity your `identify` hook gave the connection. */
  identity?: string;
  /** The client's `sessionGuid` (one browser tab). */
  sessionGuid?: string;
  /** The client's `userId`, as the client said it (prefer `identity`). */
  userId?: string;
}

/** The argument of {@link OnSendHook}. */
export interface SendContext {
  req: IncomingMessage;
  topic: string;
  /**
   * The client's id of the send (the same on every retry of it), when it gave one: key your own
   * side effects on it (with `userId` or `sessionGuid`) to make them happen once too.
   */
  id: string | undefined;
  /** The `data` of the send, as the client sent it: validate it before use. */
  data: unknown;
  sessionGuid: string | undefined;
  userId: string | undefined;
  /** What your `identify` hook answered for this request (undefined without one). */
  identity: string | undefined;
  /**
   * Publishes to any topic through the server's broker; resolves with the message id. For a send
   * with an id, each publish is made once per idempotency window: a retried send runs the hook
   * again, and its first, second… publish answers the first run's ids without publishing again
   * (so publish the same things in the same order).
   */
  publish: (topic: string, data: unknown) => Promise<string>;
}

/**
 * What a send does; resolves with the message id answered to the client. Throw a
 * `CometServerError` to refuse (e.g. `400 bad_request` with a message the UI shows).
 * The default publishes `data` to the topic. A retried send (same id) runs the hook again:
 * its publishes are not repeated (see {@link SendContext.publish}), its other effects are
 * yours to make idempotent (see {@link SendContext.id}).
 */
export type OnSendHook = (context: SendContext) => string | Promise<string>;

/** The argument of {@link PresenceOptions.member}. */
export interface PresenceMemberContext {
  req: IncomingMessage;
  /** The topic the client is present on (not its `@presence` topic). */
  topic: string;
  sessionGuid: string;
  /** As the client says: check it against your own authentication before trusting it. */
  userId: string | undefined;
  /** What the `identify` hook answered (a verified user), else undefined. */
  identity: string | undefined;
}

/** What others see of a present client: `false` keeps it out of the presence (it still sees it). */
export type PresenceMemberHook = (
  context: PresenceMemberContext,
) =>
  | { userId?: string; data?: unknown }
  | false
  | Promise<{ userId?: string; data?: unknown } | false>;

/** Presence: who is on a topic (see docs/concepts/presence.md). */
export interface PresenceOptions {
  /**
   * How long a presence entry lives without being renewed, in ms. Renewed while the client
   * holds a poll, a stream or a socket on any instance; a client that vanished without
   * leaving is gone between `ttl / 4` and `1.25 × ttl` after its last request ended.
   * @default 30_000
   */
  ttl?: number;
  /**
   * The largest `data` of a member, in bytes of JSON; larger data is dropped (logged).
   * @default 512
   */
  dataLimit?: number;
  /**
   * What others see of a client, asked once per client, topic and instance.
   * @default the client's `userId`, no data
   */
  member?: PresenceMemberHook;
}

/** {@link PresenceOptions} with its defaults. */
export interface ResolvedPresenceOptions {
  ttl: number;
  dataLimit: number;
  member: PresenceMemberHook | undefined;
}

/** A structured log event. */
export interface ServerLogEvent {
  level: 'debug' | 'info' | 'warn' | 'error';
  /** A stable name, e.g. `request.rejected`, `hook.failed`, `server.draining`. */
  event: string;
  message: string;
  /** Facts: status, code, topic, error… */
  [key: string]: unknown;
}

/** CORS settings; without them the server adds no CORS header (same origin only). */
export interface CorsOptions {
  /**
   * Allowed origins: a list (exact match, e.g. `https://app.example.com`), `'*'` for any, or a
   * function. The request's origin is echoed back, never `*`, so credentials can work.
   */
  origins: readonly string[] | '*' | ((origin: string) => boolean);
  /**
   * Sends `Access-Control-Allow-Credentials: true` (cookies on cross-origin requests) and
   * lets an allowed origin's WebSocket upgrade carry cookies to the hooks. Not with `'*'`.
   * @default false
   */
  credentials?: boolean;
  /**
   * How long a browser may cache a preflight answer, in seconds.
   * @default 600
   */
  maxAge?: number;
}

/** Options of `createCometServer`. */
export interface CometServerOptions {
  /**
   * The base path the handler serves (polls at `path`, sends at `path/{topic}`).
   * @default '/api/comet'
   */
  path?: string;
  /**
   * Where messages live. Share one broker between instances (Redis across processes).
   * @default createMemoryBroker() (closed with the server; a broker you pass is not)
   */
  broker?: Broker;
  /**
   * The longest a poll is held, in ms: the client's `wait` is capped by it. Keep it below
   * every idle timeout on the path (AWS Classic Load Balancer and nginx: 60 s). Holds end on
   * one shared timer ticking every 100 ms: never before `min(wait, maxWait)`, at most 100 ms
   * after, on the monotonic clock (a step of the wall clock changes nothing).
   * @default 25_000
   */
  maxWait?: number;
  /**
   * The most messages of one topic in one answer; a client further behind gets the rest in
   * its next poll, at once.
   * @default 1000
   */
  batchLimit?: number;
  /**
   * How long a held poll waits after a wake-up before reading, in ms, so a burst goes out as
   * one answer. `0` still gathers everything published in the same event-loop turn.
   * @default 0
   */
  coalesceMs?: number;
  /**
   * The largest request body, in bytes; larger ones get `413 too_large`.
   * @default 65_536
   */
  bodyLimit?: number;
  /**
   * The most topics in one poll; more get `400 bad_request`.
   * @default 100
   */
  maxTopics?: number;
  /**
   * How long a send's answer is remembered so a retried send publishes once, in ms.
   * @default 300_000 (5 minutes)
   */
  idempotencyTtl?: number;
  /**
   * `Retry-After` (seconds) on the `503 unavailable` answers while draining.
   * @default 1
   */
  retryAfter?: number;
  /**
   * How often an open stream (`{path}/_stream`) gets a `: hb` comment, in ms, so proxies and
   * clients see it is alive.
   * @default 15_000
   */
  heartbeatInterval?: number;
  /**
   * The longest a stream stays open, in ms; it ends between 90% and 100% of this (spread so
   * streams opened together do not reconnect together) and the client opens a new one.
   * @default 300_000 (5 minutes)
   */
  streamMaxTime?: number;
  /**
   * A WebSocket from which nothing arrived (no frame, no `ping`) for this long, in ms, is
   * terminated. Clients ping every 20 s.
   * @default 45_000
   */
  webSocketIdleTimeout?: number;
  /**
   * Cross-origin access. For WebSocket (where CORS does not apply) `origins` also decides
   * which other `Origin` may upgrade. An upgrade without `Origin` (not a browser) or whose
   * `Origin` host equals the request's `Host` (same origin) is always accepted; any other
   * origin gets `403`. Without `credentials`, an allowed cross-origin request or upgrade
   * reaches the hooks without its cookies (as a browser's `fetch` would send it), so one rule
   * holds on every transport. `'*'` with `credentials: true` is refused at startup. A proxy
   * in front must pass `Host` through (nginx: `proxy_set_header Host $host;`).
   * @default undefined (closed: no CORS headers; WebSocket same-origin or no Origin only)
   */
  cors?: CorsOptions;
  /**
   * The most bytes an answer may carry: a long-poll answer, a stream `messages` event or a
   * WebSocket `messages` frame stops adding messages once it reaches this (it always carries at
   * least one), and the rest follows at once (the client polls again at once after an answer
   * with messages; a stream or WebSocket reads on without waiting). So an answer's size is
   * bounded whatever the history holds: about this plus one message.
   * @default 1_048_576 (1 MiB)
   */
  maxAnswerBytes?: number;
  /**
   * The deepest nesting of arrays and objects in a request body, a WebSocket frame or a
   * published `data`; deeper gets `400 bad_request` (an `error` frame or a `nack` on a
   * WebSocket, a rejected `publish()` in code). Deeply nested JSON is how one message could
   * otherwise make every answer that holds it fail to encode.
   * @default 32
   */
  maxDepth?: number;
  /**
   * The most bytes a client may leave unread: a WebSocket whose `bufferedAmount`, or a stream
   * whose response's `writableLength`, would pass this is closed (WebSocket code 1013; the
   * stream just ends). A client that reads gets at most one answer ahead of it.
   * @default 2_097_152 (2 MiB)
   */
  maxBufferedBytes?: number;
  /**
   * A WebSocket that sends this many bad frames in a row (not JSON, unknown type, an invalid
   * `poll` or `send`) is closed with code 1008.
   * @default 20
   */
  maxBadFrames?: number;
  /**
   * The most sends one WebSocket may have in flight; more are answered `nack` `rate_limited`
   * at once. A `send` frame repeating an id still in flight on the socket is ignored: the
   * first one's answer answers it (and counts in flight too).
   * @default 32
   */
  maxSendsInFlight?: number;
  /**
   * The most polls one session (`sessionGuid`, else the client's address) may have held at
   * once, long-polls and streams together; one more gets `429 rate_limited` with `Retry-After`
   * (an honest client holds one: a tab has one connection).
   * @default 6
   */
  maxHeldPerSession?: number;
  /**
   * How long `authorize` and `onSend` may take, in ms. A hook that has not settled by then is
   * answered `503 unavailable` with `Retry-After` (a WebSocket `nack`, a poll's whole answer):
   * the client retries. A late `onSend` still counts for its send id.
   * @default 10_000
   */
  hookTimeout?: number;
  /**
   * Per-topic permission for polls and sends.
   * @default undefined (everything allowed)
   */
  authorize?: AuthorizeHook;
  /**
   * Who a request is from, from its verified credentials; see {@link IdentifyHook}.
   * @default undefined (no identity: sends are scoped by the client's userId, else its session)
   */
  identify?: IdentifyHook;
  /**
   * Runs `authorize` again on every open stream and WebSocket every this many ms, with the
   * connection's current credentials (a WebSocket's latest frame headers). A topic refused
   * then stops at once and its refusal goes to the client in the `errors` of a `messages`
   * event/frame (the client asks its `auth` hook for fresh credentials and polls again from
   * its cursor). Bounds how long an expired token keeps receiving.
   * @default undefined (authorize runs when a poll arrives or a stream opens)
   */
  reauthorizeInterval?: number;
  /**
   * What a send does.
   * @default publishes the send's data to its topic
   */
  onSend?: OnSendHook;
  /**
   * Receives structured log events.
   * @default undefined (silent)
   */
  logger?: (event: ServerLogEvent) => void;
  /**
   * The HTTP publish API (`POST {path}/_publish`, and `comet.publishHandler` for an internal
   * port), for publishers outside this process. Needs a `key` or an `authorize` hook.
   * @default undefined (off: `{path}/_publish` answers 404)
   */
  publishApi?: PublishApiOptions;
  /**
   * Rate limits per client (requests, sends) and per topic (publishes), answered with `429`
   * and `Retry-After`.
   * @default undefined (no limits)
   */
  rateLimit?: RateLimitOptions;
  /**
   * Presence on `{topic}@presence` topics (`true` for the defaults). Needs a broker with
   * presence (the memory and Redis brokers have it).
   * @default undefined (off: `@presence` topics are ordinary topics)
   */
  presence?: PresenceOptions | boolean;
  /**
   * Prometheus metrics from `createCometMetrics()`, fed by this server.
   * @default undefined (no metrics, no overhead)
   */
  metrics?: CometMetrics;
}

/** The options with every default filled in, read by the rest of the server. */
export interface ResolvedServerOptions {
  path: string;
  maxWait: number;
  batchLimit: number;
  coalesceMs: number;
  bodyLimit: number;
  maxTopics: number;
  idempotencyTtl: number;
  retryAfter: number;
  heartbeatInterval: number;
  streamMaxTime: number;
  webSocketIdleTimeout: number;
  maxAnswerBytes: number;
  maxDepth: number;
  maxBufferedBytes: number;
  maxBadFrames: number;
  maxSendsInFlight: number;
  maxHeldPerSession: number;
  hookTimeout: number;
  cors: Required<CorsOptions> | undefined;
  authorize: AuthorizeHook | undefined;
  identify: IdentifyHook | undefined;
  reauthorizeInterval: number | undefined;
  onSend: OnSendHook | undefined;
  publishApi: ResolvedPublishApiOptions | undefined;
  presence: ResolvedPresenceOptions | undefined;
  log: (event: ServerLogEvent) => void;
}

function integer(name: string, value: number | undefined, fallback: number, min: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
    throw new TypeError(
      `createCometServer: ${name} must be an integer >= ${min}, got ${String(value)}`,
    );
  }
  return value;
}

function hook<T>(name: string, value: T | undefined): T | undefined {
  if (value !== undefined && typeof value !== 'function') {
    throw new TypeError(`createCometServer: ${name} must be a function, got ${typeof value}`);
  }
  return value;
}

/** Validates the options once and fills in the defaults; a bad option throws a TypeError. */
export function resolveServerOptions(options: CometServerOptions): ResolvedServerOptions {
  let path = options.path ?? '/api/comet';
  if (typeof path !== 'string' || !path.startsWith('/')) {
    throw new TypeError(`createCometServer: path must start with "/", got ${String(path)}`);
  }
  if (path.length > 1 && path.endsWith('/')) path = path.slice(0, -1);
  const cors = options.cors;
  if (cors !== undefined) {
    const origins = cors.origins;
    if (origins !== '*' && typeof origins !== 'function' && !Array.isArray(origins)) {
      throw new TypeError('createCometServer: cors.origins must be a list, "*" or a function');
    }
    if (origins === '*' && cors.credentials === true) {
      // Every site could then act with every visitor's cookies: name the origins instead.
      throw new TypeError(
        'createCometServer: cors.origins "*" with cors.credentials would let every site use your visitors\' cookies; list the origins',
      );
    }
  }
  const logger = options.logger;
  return {
    path,
    maxWait: integer('maxWait', options.maxWait, 25_000, 0),
    batchLimit: integer('batchLimit', options.batchLimit, 1000, 1),
    coalesceMs: integer('coalesceMs', options.coalesceMs, 0, 0),
    bodyLimit: integer('bodyLimit', options.bodyLimit, 65_536, 1),
    maxTopics: integer('maxTopics', options.maxTopics, 100, 1),
    idempotencyTtl: integer('idempotencyTtl', options.idempotencyTtl, 300_000, 1),
    // 0 would make every refused client retry at once, in a loop.
    retryAfter: integer('retryAfter', options.retryAfter, 1, 1),
    heartbeatInterval: integer('heartbeatInterval', options.heartbeatInterval, 15_000, 1),
    streamMaxTime: integer('streamMaxTime', options.streamMaxTime, 300_000, 1),
    webSocketIdleTimeout: integer('webSocketIdleTimeout', options.webSocketIdleTimeout, 45_000, 1),
    maxAnswerBytes: integer('maxAnswerBytes', options.maxAnswerBytes, 1_048_576, 1024),
    maxDepth: integer('maxDepth', options.maxDepth, 32, 2),
    maxBufferedBytes: integer('maxBufferedBytes', options.maxBufferedBytes, 2_097_152, 65_536),
    maxBadFrames: integer('maxBadFrames', options.maxBadFrames, 20, 1),
    maxSendsInFlight: integer('maxSendsInFlight', options.maxSendsInFlight, 32, 1),
    maxHeldPerSession: integer('maxHeldPerSession', options.maxHeldPerSession, 6, 1),
    hookTimeout: integer('hookTimeout', options.hookTimeout, 10_000, 1),
    cors: cors && {
      origins: cors.origins,
      credentials: cors.credentials ?? false,
      maxAge: integer('cors.maxAge', cors.maxAge, 600, 0),
    },
    authorize: hook('authorize', options.authorize),
    identify: hook('identify', options.identify),
    reauthorizeInterval:
      options.reauthorizeInterval === undefined
        ? undefined
        : integer('reauthorizeInterval', options.reauthorizeInterval, 0, 100),
    onSend: options.onSend,
    publishApi:
      options.publishApi === undefined ? undefined : resolvePublishApiOptions(options.publishApi),
    presence: resolvePresence(options.presence),
    log: logger
      ? (event) => {
          try {
            logger(event);
          } catch {
            // A failing logger must not turn a good answer into a failure.
          }
        }
      : () => {},
  };
}

function resolvePresence(
  presence: PresenceOptions | boolean | undefined,
): ResolvedPresenceOptions | undefined {
  if (presence === undefined || presence === false) return undefined;
  const given = presence === true ? {} : presence;
  if (given.member !== undefined && typeof given.member !== 'function') {
    throw new TypeError('createCometServer: presence.member must be a function');
  }
  return {
    ttl: integer('presence.ttl', given.ttl, 30_000, 100),
    dataLimit: integer('presence.dataLimit', given.dataLimit, 512, 0),
    member: given.member,
  };
}
