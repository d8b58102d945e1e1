/** The public API of `@cometkit/server`: the server, the broker interface and its helpers. */
export type {
  Broker,
  BrokerMessage,
  BrokerPresence,
  BrokerPresenceMember,
  BrokerPublishOptions,
  BrokerReadNow,
  BrokerReadResult,
  BrokerReadWire,
  BrokerRecentOptions,
  BrokerWireRead,
} from './broker';
export {
  createListenerRegistry,
  type ListenerRegistry,
  type ListenerRegistryOptions,
  type TopicListener,
} from './brokers/listeners';
export {
  createMemoryBroker,
  type MemoryBroker,
  type MemoryBrokerOptions,
} from './brokers/memory';
export {
  type CloseOptions,
  type CometServer,
  type CometServerStats,
  createCometServer,
  type NextFunction,
  type UpgradeSource,
} from './create-server';
export { CometServerError, isCometServerError } from './errors';
export {
  type CometMetrics,
  type CometMetricsOptions,
  createCometMetrics,
  type MetricsSource,
  OTHER_TOPIC,
} from './metrics';
export type {
  BrokerOperation,
  LimitName,
  RouteName,
  ServerObserver,
  TransportName,
} from './observer';
export type {
  AuthorizeAction,
  AuthorizeContext,
  AuthorizeHook,
  CometServerOptions,
  CorsOptions,
  DisconnectFilter,
  IdentifyHook,
  OnSendHook,
  PresenceMemberContext,
  PresenceMemberHook,
  PresenceOptions,
  SendContext,
  ServerLogEvent,
} from './options';
export {
  MAX_PUBLISH_ID_LENGTH,
  type PublishMessage,
  type PublishOptions,
  parsePublishMessage,
  publishIdProblem,
  publishKey,
  publishOnce,
} from './publish';
export type { PublishApiOptions } from './publish-api';
export {
  defaultRateLimitKey,
  type RateLimitKeyContext,
  type RateLimitName,
  type RateLimitOptions,
  type RateLimitRule,
} from './rate-limit';
