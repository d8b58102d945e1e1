/** The public API of `@cometkit/redis`: the Redis broker, its options and its error. */
export { isRedisBrokerError, RedisBrokerError, type RedisBrokerErrorCode } from './errors';
export type { RedisBrokerOptions } from './options';
export {
  createRedisPublisher,
  type RedisPublisher,
  type RedisPublisherOptions,
} from './publisher';
export { createRedisBroker, type RedisBroker } from './redis-broker';
