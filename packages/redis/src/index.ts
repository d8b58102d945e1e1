export { isRedisBrokerError, RedisBrokerError, type RedisBrokerErrorCode } from './errors';
export type { RedisBrokerOptions } from './options';
export { createRedisBroker, type RedisBroker } from './redis-broker';
