/**
 * Publishing from another process (a worker, a cron job) through Redis, with no HTTP server and
 * no cometkit server in that process: the same broker, so every server instance on that Redis
 * wakes its clients, and the same checks and once-per-id rule as the server's own publishes
 * (both come from `@cometkit/server`), so a retried job publishes once whether it went through
 * the HTTP publish API or through here.
 */
import {
  type PublishMessage,
  type PublishOptions,
  parsePublishMessage,
  publishOnce,
} from '@cometkit/server';
import type { RedisBrokerOptions } from './options';
import { createRedisBroker } from './redis-broker';

/**
 * Options of {@link createRedisPublisher}: where Redis is and how topics are kept, as for the
 * servers' broker. `keyPrefix`, `maxLength` and `maxAgeMs` must be the servers' own.
 */
export interface RedisPublisherOptions extends RedisBrokerOptions {
  /**
   * How long a publish `id` is remembered, in ms (use the servers' `idempotencyTtl`).
   * @default 300_000 (5 minutes)
   */
  idempotencyTtl?: number;
}

/** A publish-only client from {@link createRedisPublisher}. */
export interface RedisPublisher {
  /**
   * Publishes `data` to `topic`; resolves with the message id. With `options.id`, publishes
   * once per id within the idempotency window (a retry answers the first message id). Rejects
   * with a `CometServerError` `400 bad_request` for a bad topic or id, a `RedisBrokerError`
   * when Redis fails.
   */
  publish(topic: string, data: unknown, options?: PublishOptions): Promise<string>;
  /**
   * Publishes `messages` in order, each once per its `id`; resolves with their message ids.
   * All are checked before the first is published.
   */
  publishBatch(messages: readonly PublishMessage[]): Promise<string[]>;
  /** Closes the Redis connections. */
  close(): Promise<void>;
}

/**
 * Makes a publish-only client on Redis for a process that runs no cometkit server.
 *
 * @example
 * ```ts
 * const publisher = createRedisPublisher({ redis: process.env.REDIS_URL });
 * await publisher.publish('orders', { id: 42, state: 'shipped' }, { id: 'order-42-shipped' });
 * await publisher.close();
 * ```
 */
export function createRedisPublisher(options: RedisPublisherOptions = {}): RedisPublisher {
  const { idempotencyTtl = 300_000, ...brokerOptions } = options;
  if (!Number.isSafeInteger(idempotencyTtl) || idempotencyTtl < 1) {
    throw new RangeError(
      `createRedisPublisher: idempotencyTtl must be an integer >= 1, got ${String(idempotencyTtl)}`,
    );
  }
  const broker = createRedisBroker(brokerOptions);
  const once = (message: PublishMessage) =>
    publishOnce((topic, data, once) => broker.publish(topic, data, once), message, idempotencyTtl);

  return {
    async publish(topic, data, publishOptions) {
      const id = publishOptions?.id;
      return once(parsePublishMessage(id === undefined ? { topic, data } : { topic, data, id }));
    },

    async publishBatch(messages) {
      if (!Array.isArray(messages)) throw new TypeError('publishBatch: messages must be an array');
      const valid = messages.map((message) => parsePublishMessage(message));
      const ids: string[] = [];
      for (const message of valid) ids.push(await once(message));
      return ids;
    },

    close: () => broker.close(),
  };
}
