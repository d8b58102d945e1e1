/** The options of `createCometClient`, and their one-time normalisation. */
import type { BackoffOptions, ResolvedBackoff } from './backoff';
import { type CometEnvironment, resolveEnvironment } from './environment';
import { CometError, type HttpError } from './errors';
import { DEFAULT_BASE_URL, type TransportName } from './protocol';

/** Request headers, as a record. */
export type HeaderRecord = Record<string, string>;

/** What the `auth` hook is told about the refusal. */
export interface AuthContext {
  /**
   * The refusal as an HTTP error: a 401/403 answer, a `nack`, or a topic refused in an answer
   * (`unauthorized` read as 401, `forbidden` as 403).
   */
  error: HttpError;
  /** The topic, when the server refused one topic (the others went on). */
  topic?: string;
}

/** Options of `createCometClient`. */
export interface CometClientOptions {
  /**
   * The endpoint's base URL. Must be absolute where there is no page location (Node).
   * @default '/api/comet'
   */
  url?: string;
  /**
   * The application's user id, sent with every request.
   * @default undefined
   */
  userId?: string;
  /**
   * How long a long-poll may be held by the server, in ms: the most the client asks for. The
   * adaptive hold lowers it when something on the path cuts held polls earlier, raises it back
   * after a run of polls held to their end, and remembers it per URL with the transport (the
   * `wait-lowered` and `wait-raised` diagnostics; docs/concepts/errors.md).
   * @default 25000
   */
  wait?: number;
  /**
   * How long after `wait` an unanswered poll is given up as dead (the watchdog), in ms.
   * @default 10000
   */
  watchdogGrace?: number;
  /**
   * Backoff between failed attempts (full jitter).
   * @default { initialDelay: 500, maxDelay: 30000, factor: 2 }
   */
  backoff?: BackoffOptions;
  /**
   * Headers for every request: a record, or a function (sync or async) called per request,
   * e.g. to read a fresh token.
   * @default undefined
   */
  headers?: HeaderRecord | (() => HeaderRecord | Promise<HeaderRecord>);
  /**
   * Called for fresh credentials when the server refuses them: a 401/403, a send's
   * `unauthorized`/`forbidden`, or a topic refused with those codes (e.g. an expired token),
   * once per refusal streak on every transport. Return headers to retry with (they override
   * `headers`; a topic is polled again from its cursor, a send sent again with its id), or
   * nothing to give up (a topic is dropped with a `TopicError`, a send rejected, a 401/403 poll
   * fails). A second refusal in a row gives up without asking again. Refusals that arrive
   * together share one call.
   * @default undefined (a refusal is final at once)
   */
  auth?: (context: AuthContext) => HeaderRecord | undefined | Promise<HeaderRecord | undefined>;
  /**
   * How many sends may wait (offline, reconnecting, in flight) before `send` rejects with a
   * `QueueFullError`.
   * @default 100
   */
  sendQueueLimit?: number;
  /**
   * How long a send may take, in ms, from `send()` to the server's acceptance, through
   * retries, outages and the queue: past it the send rejects with a `TimeoutError` and the
   * next one goes. A send given up while its request was out may still have been published.
   * `0` waits as long as it takes.
   * @default 0
   */
  sendTimeout?: number;
  /**
   * Delay between the last unsubscribe and stopping the connection, in ms: a subscription that
   * comes back meanwhile (React StrictMode's double mount) keeps the connection.
   * @default 1000
   */
  idleGrace?: number;
  /**
   * The transports to try, in order: the client falls back to the next when one cannot open.
   * `websocket` is skipped (a `transport-skipped` diagnostic) where there is no WebSocket
   * constructor (Node 20: pass one as `environment.WebSocket`). Long-poll is the floor.
   * @default ['websocket', 'stream', 'longpoll']
   */
  transports?: readonly TransportName[];
  /**
   * How long a WebSocket or stream may take to deliver its `open`, in ms, before the client
   * assumes something on the path refuses or buffers it and falls back to the next transport.
   * @default 5000
   */
  openTimeout?: number;
  /**
   * How long the transport that worked, and the long-poll `wait` learned by the adaptive hold,
   * are remembered per base URL (in `environment.storage`), in ms; the next client starts there.
   * `0` remembers nothing.
   * @default 3600000 (1 hour)
   */
  transportMemoryTtl?: number;
  /**
   * While on a fallback, how often the client tries the better transports again, in ms (with
   * ±25% jitter); it moves up without a gap when one opens. `0` never tries.
   * @default 60000
   */
  upgradeInterval?: number;
  /**
   * Keeps each topic's cursor in `sessionStorage` (per tab and base URL), so that after a reload
   * a topic subscribed again continues right after the last message delivered before it, with
   * nothing lost or repeated; when that message has left the server's history, the usual
   * `reset` says so. A `cursor` given at subscribe wins over the saved one.
   * @default false
   */
  persistCursors?: boolean;
  /**
   * The runtime: `fetch`, timers, `random`, `now`, `storage`, `randomUUID`, an online source and
   * `WebSocket`. Each defaults to the global, read when used.
   * @default the globals
   */
  environment?: Partial<CometEnvironment>;
}

/** The options after normalisation: what the rest of the client reads. */
export interface ResolvedOptions {
  url: string;
  userId: string | undefined;
  wait: number;
  watchdogGrace: number;
  backoff: ResolvedBackoff;
  headers: () => Promise<HeaderRecord>;
  auth: CometClientOptions['auth'];
  sendQueueLimit: number;
  sendTimeout: number;
  idleGrace: number;
  transports: readonly TransportName[];
  openTimeout: number;
  transportMemoryTtl: number;
  upgradeInterval: number;
  persistCursors: boolean;
  environment: CometEnvironment;
}

function fail(name: string, value: unknown): never {
  throw new CometError(`option ${name} is invalid: ${String(value)}`);
}

function number(name: string, value: unknown, fallback: number, min = 0): number {
  if (value === undefined) return fallback;
  return typeof value === 'number' && value >= min && value < Infinity ? value : fail(name, value);
}

/** Checks and normalises the options once; throws a `CometError` naming a bad option. */
export function resolveOptions(options: CometClientOptions = {}): ResolvedOptions {
  const {
    url = DEFAULT_BASE_URL,
    userId,
    headers,
    auth,
    transports = ['websocket', 'stream', 'longpoll'],
  } = options;
  if (typeof url !== 'string' || !url) fail('url', url);
  if (userId !== undefined && typeof userId !== 'string') fail('userId', userId);
  if (auth !== undefined && typeof auth !== 'function') fail('auth', auth);
  if (!Array.isArray(transports) || !transports.length) fail('transports', transports);
  const backoff = options.backoff ?? {};
  return {
    url: url.replace(/\/+$/, ''),
    userId,
    wait: number('wait', options.wait, 25_000),
    watchdogGrace: number('watchdogGrace', options.watchdogGrace, 10_000),
    backoff: {
      initialDelay: number('backoff.initialDelay', backoff.initialDelay, 500),
      maxDelay: number('backoff.maxDelay', backoff.maxDelay, 30_000),
      factor: number('backoff.factor', backoff.factor, 2, 1),
    },
    headers: async () => ({ ...(typeof headers === 'function' ? await headers() : headers) }),
    auth,
    sendQueueLimit: number('sendQueueLimit', options.sendQueueLimit, 100, 1),
    sendTimeout: number('sendTimeout', options.sendTimeout, 0),
    idleGrace: number('idleGrace', options.idleGrace, 1000),
    transports,
    openTimeout: number('openTimeout', options.openTimeout, 5000),
    transportMemoryTtl: number('transportMemoryTtl', options.transportMemoryTtl, 3_600_000),
    upgradeInterval: number('upgradeInterval', options.upgradeInterval, 60_000),
    persistCursors: options.persistCursors === true,
    environment: resolveEnvironment(options.environment),
  };
}
