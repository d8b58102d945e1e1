/**
 * Rate limits: how many requests and sends one client may make, and how many publishes one topic
 * may take, per window. Counting is `rate-limiter-flexible`'s (in memory for one instance, in
 * Redis across instances), not a bucket of our own. A client over its limit gets `429
 * rate_limited` with `Retry-After` (whole seconds, at least 1), or a `rate_limited` nack on a
 * WebSocket; `@cometkit/core` waits that long before it tries again.
 */
import type { IncomingMessage } from 'node:http';
import type { RateLimiterAbstract } from 'rate-limiter-flexible';
import { CometServerError } from './errors';
import type { ServerLogEvent } from './options';

/** At most `points` in any `duration` seconds (a fixed window per key). */
export interface RateLimitRule {
  /** How many are allowed per window. */
  points: number;
  /** The window, in seconds. */
  duration: number;
}

/** What the {@link RateLimitOptions.key} function gets. */
export interface RateLimitKeyContext {
  req: IncomingMessage;
  /** From the request body (polls, sends) or the WebSocket's last poll; as the client says. */
  sessionGuid: string | undefined;
  /** As the client says: not authentication. */
  userId: string | undefined;
  /** What the server's `identify` hook answered (a verified user or service), if any. */
  identity: string | undefined;
}

/** What is limited; also the `limit` label of the `limits hit` metric. */
export type RateLimitName = 'requests' | 'sends' | 'publishes';

/** The `rateLimit` option of `createCometServer`. Each rule is off unless given. */
export interface RateLimitOptions {
  /**
   * Per client (see `key`): polls, stream opens and WebSocket `poll` frames.
   * @default undefined (no limit)
   */
  requests?: RateLimitRule;
  /**
   * Per client (see `key`): sends, over HTTP or WebSocket.
   * @default undefined (no limit)
   */
  sends?: RateLimitRule;
  /**
   * Per topic: sends and publish API calls to it (not `comet.publish` from your own code).
   * @default undefined (no limit)
   */
  publishes?: RateLimitRule;
  /**
   * Who a request counts against. Behind a proxy or load balancer the socket address is the
   * proxy's: read your trusted forwarding header here instead.
   * @default the `identity` from the `identify` hook when there is one (a user across tabs and
   * devices), else the socket's remote address + the request's `sessionGuid`
   */
  key?: (context: RateLimitKeyContext) => string;
  /**
   * An ioredis (or node-redis) client: counts are shared by every instance using that Redis.
   * The client is yours (not closed by the server). While Redis fails, requests are allowed
   * (and a `ratelimit.failed` warning is logged): a limit must not become an outage.
   * @default undefined (counted in this process's memory)
   */
  redis?: unknown;
  /**
   * Prefix of the Redis keys (and of the in-memory ones).
   * @default 'cometkit:rl'
   */
  keyPrefix?: string;
}

/** Counts and refuses; made once per server from {@link RateLimitOptions}. */
export interface RateLimiter {
  /** Counts one request of a client; throws `429 rate_limited` over the limit. */
  request(context: RateLimitKeyContext): Promise<void>;
  /** Counts one send of a client; throws `429 rate_limited` over the limit. */
  send(context: RateLimitKeyContext): Promise<void>;
  /** Counts one publish to `topic` (from a send or the publish API); throws over the limit. */
  publish(topic: string): Promise<void>;
}

/**
 * The default key: the verified identity when the `identify` hook gave one, else who the socket
 * is and which tab (session) says it is.
 */
export function defaultRateLimitKey(context: RateLimitKeyContext): string {
  if (context.identity !== undefined) return `identity:${context.identity}`;
  return `${context.req.socket?.remoteAddress ?? ''}|${context.sessionGuid ?? ''}`;
}

function checkRule(name: string, rule: RateLimitRule | undefined): void {
  if (rule === undefined) return;
  const { points, duration } = rule;
  if (!Number.isInteger(points) || points < 1 || !Number.isInteger(duration) || duration < 1) {
    throw new TypeError(
      `createCometServer: rateLimit.${name} needs integer points >= 1 and duration >= 1 (seconds)`,
    );
  }
}

/**
 * Makes the limiter for `options`, or undefined when no rule is set. Throws a TypeError for a
 * bad rule.
 */
export function createRateLimiter(
  options: RateLimitOptions | undefined,
  log: (event: ServerLogEvent) => void,
  onLimited: (limit: RateLimitName) => void = () => {},
): RateLimiter | undefined {
  if (options === undefined) return undefined;
  for (const name of ['requests', 'sends', 'publishes'] as const) checkRule(name, options[name]);
  const prefix = options.keyPrefix ?? 'cometkit:rl';
  const key = options.key ?? defaultRateLimitKey;
  // The rules as given now (the limiters are made once the module has loaded).
  const limits = {
    requests: options.requests && { ...options.requests },
    sends: options.sends && { ...options.sends },
    publishes: options.publishes && { ...options.publishes },
  };
  const redis = options.redis;
  type Flexible = typeof import('rate-limiter-flexible');
  const make = (flexible: Flexible, name: RateLimitName): RateLimiterAbstract | undefined => {
    const rule = limits[name];
    if (rule === undefined) return undefined;
    const settings = {
      points: rule.points,
      duration: rule.duration,
      keyPrefix: `${prefix}:${name}`,
    };
    return redis === undefined
      ? new flexible.RateLimiterMemory(settings)
      : new flexible.RateLimiterRedis({ ...settings, storeClient: redis });
  };
  // The module is loaded here, by a server with limits only (one without does not pay for it:
  // a few MB of RSS), and from now on, so the first request seldom waits for it. A failed load
  // rejects every count (the request is answered 500, and logged).
  const loaded = import('rate-limiter-flexible').then((flexible) => ({
    flexible,
    limiters: {
      requests: make(flexible, 'requests'),
      sends: make(flexible, 'sends'),
      publishes: make(flexible, 'publishes'),
    },
  }));
  loaded.catch(() => {
    // Not unhandled: each count awaits `loaded` and rejects with it.
  });

  const consume = async (name: RateLimitName, id: string): Promise<void> => {
    const { flexible, limiters } = await loaded;
    const limiter = limiters[name];
    if (limiter === undefined) return;
    try {
      await limiter.consume(id);
    } catch (outcome) {
      if (!(outcome instanceof flexible.RateLimiterRes)) {
        // The store failed (Redis down): allow, say so. A limit must not become an outage.
        log({
          level: 'warn',
          event: 'ratelimit.failed',
          message: 'the rate limit could not be counted; the request is allowed',
          limit: name,
          error: outcome,
        });
        return;
      }
      onLimited(name);
      const retryAfter = Math.max(1, Math.ceil(outcome.msBeforeNext / 1000));
      throw new CometServerError(
        429,
        'rate_limited',
        `too many ${name === 'publishes' ? 'publishes to this topic' : name}; retry in ${retryAfter} s`,
        { retryAfter },
      );
    }
  };

  return {
    request: (context) => (limits.requests ? consume('requests', key(context)) : Promise.resolve()),
    send: (context) => (limits.sends ? consume('sends', key(context)) : Promise.resolve()),
    publish: (topic) => (limits.publishes ? consume('publishes', topic) : Promise.resolve()),
  };
}
