/**
 * `@cometkit/core`: a real-time client that gets server push through any path.
 * Explicit named exports only.
 */
export { type BackoffOptions, backoffDelay, type ResolvedBackoff } from './backoff';
export { createCometClient } from './client';
export type { CometEnvironment, OnlineSource, StorageLike, TimerHandle } from './environment';
export {
  ClosedError,
  CometError,
  type CometErrorOptions,
  HttpError,
  isClosedError,
  isCometError,
  isHttpError,
  isNetworkError,
  isProtocolError,
  isQueueFullError,
  isTimeoutError,
  isTopicError,
  NetworkError,
  ProtocolError,
  QueueFullError,
  TimeoutError,
  TopicError,
} from './errors';
export type { AuthContext, CometClientOptions, HeaderRecord } from './options';
export { isValidTopic, topicProblem } from './protocol';
export { IDLE, nextAttempt, reduce, type StateEvent } from './state';
export type {
  CometClient,
  CometEvents,
  CometMessage,
  ConnectionState,
  ConnectionStatus,
  Diagnostic,
  MessageHandler,
  ResetEvent,
  SubscribeOptions,
  TopicData,
  TopicMap,
  TopicName,
  TopicSnapshot,
  TopicStore,
  TopicStoreOptions,
  TransportName,
} from './types';
