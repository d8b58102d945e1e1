/** The options of `createRedisBroker`, their defaults, and the one place they are validated. */
import type { ClusterOptions, RedisOptions } from 'ioredis';

/** Options of {@link createRedisBroker}. */
export interface RedisBrokerOptions {
  /**
   * Where Redis is: a `redis://` or `rediss://` URL, or ioredis options (host, port, TLS,
   * Sentinel, `retryStrategy`, …). The broker opens two connections of its own (commands and
   * Pub/Sub) and sets the options its guarantees rest on: no offline queue and no resending of
   * commands after a reconnect (a publish must fail fast rather than wait or run twice).
   * @default 'redis://127.0.0.1:6379'
   */
  redis?: string | RedisOptions;
  /**
   * Redis Cluster: the seed nodes (`'redis://host:port'` URLs or `{host, port}`), instead of
   * `redis`. A topic's keys share a hash slot (hash-tagged on the topic), so each script runs on
   * the topic's node; wake-ups use cluster-wide Pub/Sub (every node relays every wake-up). The
   * connection options of `redis` (when given as options) apply to every node.
   * @default undefined (one Redis, or Sentinel through `redis`)
   */
  cluster?: {
    nodes: ReadonlyArray<string | { host: string; port: number }>;
    /** More ioredis Cluster options (the broker sets the offline queue and retries itself). */
    options?: ClusterOptions;
  };
  /**
   * Prefix of every key and of the wake-up channel, so several applications (or tests) can share
   * one Redis. Instances that serve the same clients must use the same prefix.
   * @default 'cometkit:'
   */
  keyPrefix?: string;
  /**
   * Keep about this many messages per topic (at least this many: Redis trims whole stream nodes,
   * `MAXLEN ~`). A client further behind than this gets a `reset`. `0`: no length bound.
   * @default 100_000
   */
  maxLength?: number;
  /**
   * Keep about this many bytes of message JSON per topic: the stream is trimmed to
   * `maxBytes / (running mean message size)` messages when that is below `maxLength`, so the
   * bound is close for topics whose messages are alike in size. `0`: no byte bound. The bound
   * of all of Redis is its own `maxmemory` (with `volatile-ttl` or `volatile-lru`: every key this
   * broker writes has a TTL when `maxAgeMs` is set).
   * @default 4_194_304 (4 MiB)
   */
  maxBytes?: number;
  /**
   * Keep messages about this long, in ms (at least this long: `MINID ~`, checked on each publish).
   * A client away longer than this gets a `reset`. A topic's stream expires this long plus a
   * minute after its last publish, its small meta key a day later. `0`: no age bound and no
   * expiry.
   * @default 3_600_000 (one hour)
   */
  maxAgeMs?: number;
  /**
   * How long the first call may wait for the first connection before it rejects with
   * `unavailable`. After the broker was connected once, calls during an outage reject at once.
   * @default 10_000
   */
  connectTimeoutMs?: number;
  /**
   * A command without an answer for this long rejects with `unavailable` (a Redis that hangs
   * rather than drops the connection).
   * @default 5_000
   */
  commandTimeoutMs?: number;
}

/** The options after defaults and checks; the rest of the code reads only this. */
export interface ResolvedRedisBrokerOptions {
  redis: RedisOptions;
  cluster:
    | { nodes: Array<string | { host: string; port: number }>; options: ClusterOptions }
    | undefined;
  url: string | undefined;
  keyPrefix: string;
  maxLength: number;
  maxBytes: number;
  maxAgeMs: number;
  connectTimeoutMs: number;
  commandTimeoutMs: number;
}

function count(name: string, value: number | undefined, fallback: number, min: number): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value < min) {
    throw new RangeError(
      `createRedisBroker: ${name} must be an integer >= ${min}, got ${String(value)}`,
    );
  }
  return value;
}

/** Applies defaults and rejects bad options with a message that names the option. */
export function resolveOptions(options: RedisBrokerOptions = {}): ResolvedRedisBrokerOptions {
  if (typeof options !== 'object' || options === null) {
    throw new TypeError('createRedisBroker: options must be an object');
  }
  const { redis = 'redis://127.0.0.1:6379', keyPrefix = 'cometkit:' } = options;
  if (typeof keyPrefix !== 'string') {
    throw new TypeError('createRedisBroker: keyPrefix must be a string');
  }
  if (/[{}]/.test(keyPrefix)) {
    // A brace would move the Redis Cluster hash tag off the topic.
    throw new TypeError('createRedisBroker: keyPrefix must not contain { or }');
  }
  let url: string | undefined;
  let redisOptions: RedisOptions;
  if (typeof redis === 'string') {
    if (!/^rediss?:\/\//.test(redis)) {
      throw new TypeError(
        `createRedisBroker: redis must be a redis:// or rediss:// URL or ioredis options, got ${JSON.stringify(redis)}`,
      );
    }
    url = redis;
    redisOptions = {};
  } else if (typeof redis === 'object' && redis !== null && !('status' in redis)) {
    redisOptions = { ...redis };
  } else {
    throw new TypeError(
      'createRedisBroker: redis must be a URL or ioredis options (not a Redis instance: the broker opens its own connections)',
    );
  }
  let cluster: ResolvedRedisBrokerOptions['cluster'];
  if (options.cluster !== undefined) {
    const { nodes, options: clusterOptions = {} } = options.cluster;
    if (!Array.isArray(nodes) || nodes.length === 0) {
      throw new TypeError('createRedisBroker: cluster.nodes must be a non-empty array');
    }
    cluster = { nodes: [...nodes], options: { ...clusterOptions } };
  }
  return {
    redis: redisOptions,
    cluster,
    url,
    keyPrefix,
    maxLength: count('maxLength', options.maxLength, 100_000, 0),
    maxBytes: count('maxBytes', options.maxBytes, 4_194_304, 0),
    maxAgeMs: count('maxAgeMs', options.maxAgeMs, 3_600_000, 0),
    connectTimeoutMs: count('connectTimeoutMs', options.connectTimeoutMs, 10_000, 1),
    commandTimeoutMs: count('commandTimeoutMs', options.commandTimeoutMs, 5_000, 1),
  };
}
