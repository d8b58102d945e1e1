import type { MessageHandler, SubscribeOptions, TopicData, TopicName } from '@cometkit/core';
import { useEffect, useInsertionEffect, useRef } from 'react';
import { useCometClient } from './comet-provider';
import type { RegisteredTopics } from './register';

/** Options of {@link useTopic}. */
export interface UseTopicOptions extends SubscribeOptions {
  /**
   * Subscribe only while true, e.g. until a history request has given the `cursor` to start
   * from.
   * @default true
   */
  enabled?: boolean;
}

/**
 * Calls `handler` with each message of `topic` (or of each of `topics`) while the component is
 * mounted. The latest `handler` is always the one called: a new function on every render does
 * not resubscribe. Subscriptions are made in an effect, so server rendering subscribes nothing.
 *
 * ```tsx
 * useTopic('chat:support', (line) => setLines((lines) => [...lines, line]));
 * ```
 */
export function useTopic<K extends TopicName<RegisteredTopics>>(
  topic: K | readonly K[],
  handler: MessageHandler<TopicData<RegisteredTopics, K>, K>,
  options: UseTopicOptions = {},
): void {
  const client = useCometClient();
  const handlerRef = useRef(handler);
  // Updated before any effect or message delivery of this commit can read it.
  useInsertionEffect(() => {
    handlerRef.current = handler;
  });
  // A topic never contains a newline, so the joined list is a faithful key: an inline array
  // literal, new on each render, does not resubscribe.
  const key = typeof topic === 'string' ? topic : topic.join('\n');
  const { enabled = true, cursor } = options;
  useEffect(() => {
    if (!enabled) return;
    const topics = key.split('\n') as K[];
    return client.subscribe(topics, (data, message) => handlerRef.current(data, message), {
      cursor,
    });
  }, [client, key, enabled, cursor]);
}
