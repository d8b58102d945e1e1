export type {
  Broker,
  BrokerMessage,
  BrokerReadResult,
  IdempotencyReservation,
  IdempotencyStore,
} from './broker';
export {
  createMemoryBroker,
  type MemoryBroker,
  type MemoryBrokerOptions,
} from './brokers/memory';
export {
  type CometServer,
  type CometServerStats,
  createCometServer,
  type NextFunction,
  type UpgradeSource,
} from './create-server';
export { CometServerError, isCometServerError } from './errors';
export type {
  AuthorizeAction,
  AuthorizeContext,
  AuthorizeHook,
  CometServerOptions,
  CorsOptions,
  OnSendHook,
  SendContext,
  ServerLogEvent,
} from './options';
