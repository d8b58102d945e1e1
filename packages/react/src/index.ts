/**
 * React bindings for `@cometkit/core`: a provider and hooks, each one subscription to the core
 * client. All behaviour (connection, ref-counting, the kept messages) lives in the core.
 */

export type { PresenceMember } from '@cometkit/core/presence';
export { CometProvider, type CometProviderProps, useCometClient } from './comet-provider';
export { type CometHooks, createCometHooks } from './create-comet-hooks';
export type { Register, RegisteredTopics } from './register';
export { useConnectionState } from './use-connection-state';
export { usePresence } from './use-presence';
export { useSend } from './use-send';
export { type UseTopicOptions, useTopic } from './use-topic';
export { useTopicMessages } from './use-topic-messages';
export { useTopicValue } from './use-topic-value';
