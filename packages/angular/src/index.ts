/**
 * `@cometkit/angular`: providers, an injectable service, signals and observables over
 * `@cometkit/core`. Built without the Angular compiler (no decorators), usable in AOT and JIT
 * applications, with zone.js or zoneless change detection.
 */

export type {
  CometClient,
  CometClientOptions,
  CometMessage,
  ConnectionState,
  ConnectionStatus,
  SubscribeOptions,
} from '@cometkit/core';
export type { PresenceMember } from '@cometkit/core/presence';
export { COMET_CLIENT } from './comet-client';
export { CometService, type TopicMessagesOptions, type TopicSignalOptions } from './comet-service';
export {
  type InjectConnectionStateOptions,
  injectConnectionState,
} from './inject-connection-state';
export { injectPresence, injectTopic, injectTopicMessages } from './inject-topic';
export {
  type ProvideCometConfig,
  type ProvideCometWithClient,
  provideComet,
} from './providers';
