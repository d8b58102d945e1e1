import type { TopicData, TopicName } from '@cometkit/core';
import { useCallback, useMemo, useSyncExternalStore } from 'react';
import { useCometClient } from './comet-provider';
import type { RegisteredTopics } from './register';

const getNothing = (): undefined => undefined;

/**
 * The `data` of the newest message of `topic`, `undefined` until one arrives (and always on the
 * server). Re-renders only when that value changes (`Object.is`). Every component using the same
 * topic shares one subscription at the core.
 *
 * ```tsx
 * const price = useTopicValue('price:ACME');
 * ```
 */
export function useTopicValue<K extends TopicName<RegisteredTopics>>(
  topic: K,
): TopicData<RegisteredTopics, K> | undefined {
  const client = useCometClient();
  const store = useMemo(() => client.topicStore(topic), [client, topic]);
  const subscribe = useCallback((onChange: () => void) => store.subscribe(onChange), [store]);
  const getSnapshot = useCallback(() => store.getSnapshot().latest?.data, [store]);
  return useSyncExternalStore(subscribe, getSnapshot, getNothing);
}
