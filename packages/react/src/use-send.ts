import type { CometClient } from '@cometkit/core';
import { useCallback } from 'react';
import { useCometClient } from './comet-provider';
import type { RegisteredTopics } from './register';

/**
 * The client's `send(topic, data)`, stable for the life of the provider's client. Resolves with
 * the broker's message id (`undefined` from a server of the original design); rejects with a `CometError` (e.g. the server's `400`).
 *
 * ```tsx
 * const send = useSend();
 * await send('chat:support', { name, role, text });
 * ```
 */
export function useSend(): CometClient<RegisteredTopics>['send'] {
  const client = useCometClient();
  return useCallback<CometClient<RegisteredTopics>['send']>(
    (topic, data) => client.send(topic, data),
    [client],
  );
}
