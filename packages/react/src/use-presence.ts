/** `usePresence`: who is on a topic, one `useSyncExternalStore` over the core presence store. */
import { type PresenceMember, presence } from '@cometkit/core/presence';
import { useMemo, useSyncExternalStore } from 'react';
import { useCometClient } from './comet-provider';

const NOBODY: readonly PresenceMember[] = [];
const getNobody = () => NOBODY;

/**
 * The members on `topic` now (this client too), in join order; empty until the server's first
 * answer (and always on the server). Being on the topic is following it: the component is a
 * member while it is mounted. The server must have `presence` on.
 *
 * ```tsx
 * const members = usePresence('room');
 * ```
 */
export function usePresence(topic: string): readonly PresenceMember[] {
  const client = useCometClient();
  const store = useMemo(() => presence(client, topic), [client, topic]);
  return useSyncExternalStore(store.subscribe, store.getSnapshot, getNobody);
}
