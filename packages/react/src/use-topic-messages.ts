import type { CometMessage, TopicData, TopicName, TopicStoreOptions } from '@cometkit/core';
import { useCallback, useMemo, useSyncExternalStore } from 'react';
import { useCometClient } from './comet-provider';
import type { RegisteredTopics } from './register';

/** One empty list for every server render, so hydration compares equal. */
const NO_MESSAGES: readonly never[] = Object.freeze([]);
const getNoMessages = (): readonly never[] => NO_MESSAGES;

/**
 * The last `keep` messages of `topic`, oldest first (the core keeps them; a new array only when
 * a message arrives). Empty on the server. With `rewind` (and/or `since`), a topic not yet
 * followed starts with its recent messages from the server's history, then live ones.
 *
 * ```tsx
 * const lines = useTopicMessages('chat:support', { keep: 50 });
 * const withHistory = useTopicMessages('chat:support', { rewind: 50 }); // keep: 50 too
 * ```
 */
export function useTopicMessages<K extends TopicName<RegisteredTopics>>(
  topic: K,
  options: TopicStoreOptions = {},
): readonly CometMessage<TopicData<RegisteredTopics, K>, K>[] {
  const client = useCometClient();
  const { keep, rewind, since } = options;
  const store = useMemo(
    () => client.topicStore(topic, { keep, rewind, since }),
    [client, topic, keep, rewind, since],
  );
  const subscribe = useCallback((onChange: () => void) => store.subscribe(onChange), [store]);
  const getSnapshot = useCallback(() => store.getSnapshot().messages, [store]);
  return useSyncExternalStore(subscribe, getSnapshot, getNoMessages);
}
