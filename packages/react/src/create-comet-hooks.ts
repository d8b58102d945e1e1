import type {
  CometClient,
  CometMessage,
  ConnectionState,
  MessageHandler,
  TopicData,
  TopicMap,
  TopicName,
  TopicStoreOptions,
} from '@cometkit/core';
import { useCometClient } from './comet-provider';
import { useConnectionState } from './use-connection-state';
import { useSend } from './use-send';
import { type UseTopicOptions, useTopic } from './use-topic';
import { useTopicMessages } from './use-topic-messages';
import { useTopicValue } from './use-topic-value';

/** The hooks, typed by the topic map `Topics`. */
export interface CometHooks<Topics extends TopicMap> {
  /** See {@link useCometClient}. */
  useCometClient(): CometClient<Topics>;
  /** See {@link useTopic}. */
  useTopic<K extends TopicName<Topics>>(
    topic: K | readonly K[],
    handler: MessageHandler<TopicData<Topics, K>, K>,
    options?: UseTopicOptions,
  ): void;
  /** See {@link useTopicValue}. */
  useTopicValue<K extends TopicName<Topics>>(topic: K): TopicData<Topics, K> | undefined;
  /** See {@link useTopicMessages}. */
  useTopicMessages<K extends TopicName<Topics>>(
    topic: K,
    options?: TopicStoreOptions,
  ): readonly CometMessage<TopicData<Topics, K>, K>[];
  /** See {@link useConnectionState}. */
  useConnectionState(): ConnectionState;
  /** See {@link useSend}. */
  useSend(): CometClient<Topics>['send'];
}

const hooks = {
  useCometClient,
  useTopic,
  useTopicValue,
  useTopicMessages,
  useConnectionState,
  useSend,
};

/**
 * The same hooks, typed by a topic map without registering it globally (for an application
 * with several clients, or a library):
 *
 * ```ts
 * export const { useTopic, useSend } = createCometHooks<{ chat: ChatLine }>();
 * ```
 * The map must match the provider's client; nothing checks it at run time.
 */
export function createCometHooks<Topics extends TopicMap>(): CometHooks<Topics> {
  // Types only: the functions are the exported hooks, which are typed by the registered map.
  return hooks as unknown as CometHooks<Topics>;
}
