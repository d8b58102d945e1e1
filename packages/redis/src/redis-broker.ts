/**
 * The Redis broker: history in Redis Streams, wake-ups through one Pub/Sub channel into the
 * server's shared listener registry, idempotency records written by the publish script itself,
 * and availability tracking so
 * that an outage is reported once and answered by the server.
 */
import {
  type Broker,
  type BrokerMessage,
  type BrokerPresence,
  type BrokerPresenceMember,
  type BrokerPublishOptions,
  type BrokerReadResult,
  createListenerRegistry,
} from '@cometkit/server';
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import { RedisBrokerError } from './errors';
import { formatId, newEpoch, parseCursor } from './ids';
import { type RedisBrokerOptions, resolveOptions } from './options';
import { createPublishBatcher } from './publish-batch';
import {
  PRESENCE_JOIN,
  PRESENCE_LEAVE,
  PRESENCE_SNAPSHOT,
  PRESENCE_SWEEP_ONLY,
  PUBLISH,
  PUBLISH_ONCE,
  READ,
  RECENT,
  SCRIPTS,
  type Script,
} from './scripts';
import {
  asArray,
  asString,
  checkKey,
  checkLimit,
  checkTopic,
  toBrokerError,
  toJson,
  warn,
} from './values';

/** A {@link Broker} on Redis; `onError` is always there. */
export interface RedisBroker extends Broker {
  onError(onError: (error: Error) => void): () => void;
}

// A topic's stream outlives its oldest message by this much, so that trimming by age (on
// publish) rather than expiry is what normally removes messages.
const STREAM_TTL_SLACK_MS = 60_000;
// A topic's meta key outlives its stream by this much (see scripts.ts): a client that had read
// everything continues without a reset after a quiet day.
const META_GRACE_MS = 24 * 60 * 60 * 1000;
// Most messages in one publish script call: it blocks Redis for everyone while it runs.
const MAX_PUBLISH_BATCH = 256;
// Longest wait for QUIT at close before the socket is simply dropped.
const QUIT_TIMEOUT_MS = 1000;

/**
 * Makes a broker that keeps each topic's history in a Redis Stream and wakes held requests on
 * every instance through Redis Pub/Sub, so any number of `@cometkit/server` instances behind a
 * load balancer (no sticky sessions) serve the same clients.
 *
 * It connects at once and reconnects by itself. While Redis is unreachable, calls reject with
 * a {@link RedisBrokerError} `unavailable` and `onError` listeners hear of it once per outage,
 * so the server can answer its held requests and clients retry.
 *
 * @example
 * ```ts
 * const broker = createRedisBroker({ redis: process.env.REDIS_URL, maxAgeMs: 10 * 60_000 });
 * const server = createCometServer({ broker });
 * ```
 */
export function createRedisBroker(options: RedisBrokerOptions = {}): RedisBroker {
  const resolved = resolveOptions(options);
  const { keyPrefix, maxLength, maxAgeMs, maxBytes } = resolved;
  const wakeChannel = `${keyPrefix}wake`;
  const epochKey = `${keyPrefix}epoch`;
  // Without an age bound nothing expires; a lineage then lives for ever.
  const streamTtl = maxAgeMs > 0 ? maxAgeMs + STREAM_TTL_SLACK_MS : 0;
  const metaTtl = streamTtl > 0 ? streamTtl + META_GRACE_MS : 0;
  const lineageMs = metaTtl > 0 ? metaTtl : Number.MAX_SAFE_INTEGER;

  const connectionOptions: RedisOptions = {
    ...resolved.redis,
    lazyConnect: false,
    commandTimeout: resolved.commandTimeoutMs,
    // A command written before the connection dropped may have run: resending it could publish
    // twice, so it fails instead and the caller (the client's send retry) decides.
    autoResendUnfulfilledCommands: false,
    maxRetriesPerRequest: 0,
  };
  const connect = (extra: RedisOptions): Redis | Cluster => {
    const merged = { ...connectionOptions, ...extra };
    const { cluster } = resolved;
    if (cluster !== undefined) {
      return new Cluster(cluster.nodes, {
        ...cluster.options,
        redisOptions: merged,
        enableOfflineQueue: extra.enableOfflineQueue,
        // The broker retries nothing itself (see above); a moved slot is followed by ioredis.
        maxRedirections: cluster.options.maxRedirections ?? 16,
      });
    }
    return resolved.url === undefined ? new Redis(merged) : new Redis(resolved.url, merged);
  };
  // The nodes that must have the scripts: every master of a cluster, else the one connection.
  const scriptNodes = (): Array<Redis | Cluster> =>
    commands instanceof Cluster ? commands.nodes('master') : [commands];
  // Commands fail fast while disconnected rather than wait in a queue for an unknown time.
  const commands = connect({ enableOfflineQueue: false, connectionName: 'cometkit-commands' });
  // The subscription is made again by hand on each `ready`, so that we know when it is back.
  const subscriber = connect({
    enableOfflineQueue: true,
    autoResubscribe: false,
    connectionName: 'cometkit-wake',
  });

  // One faulty listener must not keep the others asleep: it is reported, the others run.
  const listeners = createListenerRegistry({
    onListenerError: (thrown) => warn('a listen() callback threw', thrown),
  });
  const errorListeners = new Set<(error: Error) => void>();
  let commandsReady = false;
  // The global epoch (see scripts.ts), read again at each connection before it counts as ready.
  let globalEpoch = '';
  let subscribed = false;
  let subscribedOnce = false;
  let everAvailable = false;
  let closed = false;
  let closing: Promise<void> | undefined;
  let lastConnectionError: Error | undefined;
  let readyWaiters: Array<{ resolve: () => void; reject: (error: Error) => void }> = [];

  const available = () => commandsReady && subscribed;

  const onAvailabilityChange = (wasAvailable: boolean) => {
    const now = available();
    if (now && !wasAvailable) {
      everAvailable = true;
      const waiters = readyWaiters;
      readyWaiters = [];
      for (const waiter of waiters) waiter.resolve();
    } else if (!now && wasAvailable && !closed) {
      const reason = lastConnectionError ? `: ${lastConnectionError.message}` : '';
      const error = new RedisBrokerError('unavailable', `lost the connection to Redis${reason}`, {
        cause: lastConnectionError,
      });
      for (const listener of [...errorListeners]) {
        try {
          listener(error);
        } catch (thrown) {
          warn('an onError listener threw', thrown);
        }
      }
    }
  };

  const setState = (change: () => void) => {
    const before = available();
    change();
    onAvailabilityChange(before);
  };

  for (const connection of [commands, subscriber]) {
    // ioredis prints unhandled 'error' events; we keep the last one for our own messages.
    connection.on('error', (error: Error) => {
      lastConnectionError = error;
    });
  }
  // The scripts are loaded before the connection counts as ready: a first EVALSHA answered
  // NOSCRIPT would be sent again as EVAL after a round trip, behind later calls, out of order.
  // The global epoch too: made once per Redis, so a Redis that lost everything gets a new one
  // and every "nothing here" position from before the loss resets.
  commands.on('ready', () => {
    const ready = () => {
      // Unless the connection dropped while the scripts were loading.
      if (commands.status === 'ready' && globalEpoch !== '') {
        setState(() => (commandsReady = true));
      }
    };
    globalEpoch = '';
    // A refused SCRIPT LOAD (an ACL) leaves the EVAL fallback: ready all the same.
    const scripts = Promise.all(
      scriptNodes().flatMap((node) => SCRIPTS.map((script) => node.script('LOAD', script.source))),
    ).catch(() => undefined);
    const epoch = commands
      .set(epochKey, newEpoch(), 'NX')
      .then(() => commands.get(epochKey))
      .then((value) => {
        if (value !== null) globalEpoch = value;
      });
    Promise.all([scripts, epoch]).then(ready, (error: unknown) => {
      lastConnectionError = error instanceof Error ? error : new Error(String(error));
      // No epoch, no reads: try again through a reconnect.
      if (!closed && commands.status === 'ready') commands.disconnect(true);
    });
  });
  commands.on('close', () => setState(() => (commandsReady = false)));
  subscriber.on('close', () => setState(() => (subscribed = false)));
  subscriber.on('ready', () => {
    subscriber.subscribe(wakeChannel).then(
      () => {
        if (closed) return;
        const again = subscribedOnce;
        subscribedOnce = true;
        setState(() => (subscribed = true));
        // Publishes during the gap woke nobody here: let every held request read again. (Not
        // the first time: reads wait for the first subscription, so nobody can have missed one.)
        if (again) listeners.notifyAll();
      },
      (error: unknown) => {
        lastConnectionError = error instanceof Error ? error : new Error(String(error));
        // The connection is usable but SUBSCRIBE failed (e.g. an ACL): retry through a reconnect.
        if (!closed) subscriber.disconnect(true);
      },
    );
  });
  subscriber.on('message', (channel: string, topic: string) => {
    if (channel === wakeChannel) listeners.notify(topic);
  });

  /** Resolves when both connections work; rejects at once during a later outage. */
  async function whenAvailable(): Promise<void> {
    if (closed) throw new RedisBrokerError('closed', 'the Redis broker is closed');
    if (available()) return;
    if (everAvailable) {
      const reason = lastConnectionError ? `: ${lastConnectionError.message}` : '';
      throw new RedisBrokerError('unavailable', `Redis is unavailable, reconnecting${reason}`, {
        cause: lastConnectionError,
      });
    }
    await new Promise<void>((resolve, reject) => {
      const waiter = {
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
        reject: (error: Error) => {
          clearTimeout(timer);
          reject(error);
        },
      };
      const timer = setTimeout(() => {
        readyWaiters = readyWaiters.filter((entry) => entry !== waiter);
        const reason = lastConnectionError ? `: ${lastConnectionError.message}` : '';
        reject(
          new RedisBrokerError(
            'unavailable',
            `could not connect to Redis within ${resolved.connectTimeoutMs} ms${reason}`,
            { cause: lastConnectionError },
          ),
        );
      }, resolved.connectTimeoutMs);
      readyWaiters.push(waiter);
    });
  }

  /**
   * Runs a script. While Redis is available the call is written at once (no await first), so
   * calls reach Redis in the order they were made: a topic's publishes keep their order.
   */
  function run(script: Script, keys: string[], args: Array<string | number>): Promise<unknown> {
    if (closed || !available()) return whenAvailable().then(() => call(script, keys, args));
    return call(script, keys, args);
  }

  async function call(script: Script, keys: string[], args: Array<string | number>) {
    try {
      try {
        return (await commands.evalsha(script.sha, script.keys, ...keys, ...args)) as unknown;
      } catch (error) {
        // The script cache was flushed (it is loaded on every connect, see `loadScripts`).
        if (!(error instanceof Error && error.message.startsWith('NOSCRIPT'))) throw error;
        return (await commands.eval(script.source, script.keys, ...keys, ...args)) as unknown;
      }
    } catch (error) {
      throw toBrokerError(error);
    }
  }

  const streamKey = (topic: string) => `${keyPrefix}{${topic}}:s`;
  const metaKey = (topic: string) => `${keyPrefix}{${topic}}:m`;
  const recordKey = (topic: string, key: string) => `${keyPrefix}{${topic}}:i:${key}`;
  const presenceKeys = (topic: string) => [
    streamKey(topic),
    metaKey(topic),
    `${keyPrefix}{${topic}}:pz`,
    `${keyPrefix}{${topic}}:pd`,
  ];

  const publishArgs = (topic: string) => [
    newEpoch(),
    maxLength,
    maxAgeMs,
    wakeChannel,
    topic,
    maxBytes,
    streamTtl,
    metaTtl,
  ];
  // Plain publishes of one turn: one script call per topic (see publish-batch.ts).
  const batcher = createPublishBatcher(async (topic, jsons) => {
    const reply = asArray(
      await run(PUBLISH, [streamKey(topic), metaKey(topic)], [...publishArgs(topic), '', ...jsons]),
    );
    const epoch = asString(reply[0]);
    return jsons.map((_, index) => formatId(epoch, asString(reply[index + 1])));
  }, MAX_PUBLISH_BATCH);

  function toMessages(topic: string, epoch: string, entries: unknown[]): BrokerMessage[] {
    return entries.map((entry) => {
      const [streamId, fields] = asArray(entry);
      const list = asArray(fields);
      let json: unknown;
      for (let index = 0; index + 1 < list.length; index += 2) {
        if (list[index] === 'd') json = list[index + 1];
      }
      if (typeof streamId !== 'string' || typeof json !== 'string') {
        throw new RedisBrokerError(
          'corrupt',
          `topic "${topic}" has an entry this broker did not write`,
        );
      }
      let data: unknown;
      try {
        data = JSON.parse(json);
      } catch (error) {
        throw new RedisBrokerError('corrupt', `topic "${topic}" entry ${streamId} is not JSON`, {
          cause: error,
        });
      }
      return { topic, id: formatId(epoch, streamId), data };
    });
  }

  // Each call is one script: the entries and the joins or leaves they cause change together,
  // after the topic's plain publishes already waiting (so the order is the call order).
  const runPresence = (script: Script, topic: string, args: Array<string | number>) => {
    checkTopic('presence', topic);
    batcher.flush(topic);
    return run(script, presenceKeys(topic), [...publishArgs(topic), '', ...args]);
  };
  const presence: BrokerPresence = {
    async join(topic, member, ttlMs) {
      checkLimit('presence ttlMs', ttlMs, 1);
      await runPresence(PRESENCE_JOIN, topic, [member.id, toJson(member), ttlMs]);
    },
    async leave(topic, memberId) {
      await runPresence(PRESENCE_LEAVE, topic, [memberId]);
    },
    async sweep(topic) {
      await runPresence(PRESENCE_SWEEP_ONLY, topic, []);
    },
    async snapshot(topic) {
      // The global epoch is known once available (it is read at each connection).
      if (!available()) await whenAvailable();
      const [epoch, last, jsons] = asArray(
        await runPresence(PRESENCE_SNAPSHOT, topic, [globalEpoch]),
      );
      const members = asArray(jsons).map(
        (json) => JSON.parse(asString(json)) as BrokerPresenceMember,
      );
      return { members, position: formatId(asString(epoch), asString(last)) };
    },
  };

  return {
    presence,

    async publish(topic, data, options?: BrokerPublishOptions) {
      checkTopic('publish', topic);
      const json = typeof options?.json === 'string' ? options.json : toJson(data);
      const once = options?.idempotency;
      if (once === undefined) return batcher.add(topic, json);
      checkKey('publish', once.key);
      checkLimit('publish idempotency ttlMs', once.ttlMs, 1);
      // After the topic's messages already waiting, so that its order is the publish order.
      batcher.flush(topic);
      const [epoch, id] = asArray(
        await run(
          PUBLISH_ONCE,
          [streamKey(topic), metaKey(topic), recordKey(topic, once.key)],
          [...publishArgs(topic), once.ttlMs, json],
        ),
      );
      // '=': published before with this key; `id` is the message id it got.
      return epoch === '=' ? asString(id) : formatId(asString(epoch), asString(id));
    },

    async read(topic, cursor, limit): Promise<BrokerReadResult> {
      checkTopic('read', topic);
      checkLimit('read', limit, 1);
      if (cursor !== undefined && typeof cursor !== 'string') {
        throw new TypeError(`read: cursor must be a string or undefined, got ${typeof cursor}`);
      }
      // A cursor this broker did not make gets an epoch no topic has: a reset, not an error.
      const parsed = cursor === undefined ? undefined : parseCursor(cursor);
      const cursorEpoch = cursor === undefined ? '' : (parsed?.epoch ?? '!');
      // The global epoch is known once available (it is read at each connection).
      if (!available()) await whenAvailable();
      const [epoch, last, reset, entries] = asArray(
        await run(
          READ,
          [streamKey(topic), metaKey(topic)],
          [globalEpoch, cursorEpoch, parsed?.streamId ?? '0-0', limit, lineageMs],
        ),
      );
      const ep = asString(epoch);
      const all = toMessages(topic, ep, asArray(entries));
      const messages = all.slice(0, limit);
      const newest = messages.at(-1);
      return {
        messages,
        position: newest ? newest.id : formatId(ep, asString(last)),
        reset: reset === 1,
        more: all.length > limit,
      };
    },

    async recent(topic, limit, recentOptions) {
      checkTopic('recent', topic);
      checkLimit('recent', limit, 0);
      const maxAge = recentOptions?.maxAgeMs ?? 0;
      checkLimit('recent maxAgeMs', maxAge, 0);
      if (!available()) await whenAvailable();
      const [epoch, last, entries] = asArray(
        await run(RECENT, [streamKey(topic), metaKey(topic)], [globalEpoch, limit, maxAge]),
      );
      const ep = asString(epoch);
      return {
        messages: toMessages(topic, ep, asArray(entries)).reverse(),
        position: formatId(ep, asString(last)),
      };
    },

    listen(topics, onPublish) {
      if (!Array.isArray(topics)) throw new TypeError('listen: topics must be an array');
      if (typeof onPublish !== 'function')
        throw new TypeError('listen: onPublish must be a function');
      const mine = [...new Set(topics)];
      for (const topic of mine) {
        checkTopic('listen', topic);
      }
      if (closed) return () => {};
      return listeners.add(mine, onPublish);
    },

    onError(onError) {
      if (typeof onError !== 'function')
        throw new TypeError('onError: listener must be a function');
      errorListeners.add(onError);
      return () => {
        errorListeners.delete(onError);
      };
    },

    close() {
      if (closing) return closing;
      // Publishes made before close() in this turn go out, as they would have unbatched.
      batcher.flushAll();
      closed = true;
      listeners.clear();
      errorListeners.clear();
      const waiters = readyWaiters;
      readyWaiters = [];
      for (const waiter of waiters) {
        waiter.reject(new RedisBrokerError('closed', 'the Redis broker was closed'));
      }
      closing = Promise.all([quit(commands), quit(subscriber)]).then(() => undefined);
      return closing;
    },
  };
}

async function quit(connection: Redis | Cluster): Promise<void> {
  if (connection.status !== 'ready') {
    connection.disconnect(false);
    return;
  }
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, QUIT_TIMEOUT_MS);
  });
  await Promise.race([connection.quit().catch(() => undefined), timeout]);
  clearTimeout(timer);
  // Re-read: the await above may have changed it (TypeScript keeps the narrowed type).
  if ((connection.status as string) !== 'end') connection.disconnect(false);
}
