import type { ConnectionState } from '@cometkit/core';
import { useCallback, useSyncExternalStore } from 'react';
import { useCometClient } from './comet-provider';

/** The server renders idle: nothing connects there, and hydration must match. */
const IDLE: ConnectionState = Object.freeze({ status: 'idle' });
const getIdle = (): ConnectionState => IDLE;

/**
 * The client's connection state, a snapshot that changes identity only on a real change:
 * `{ status: 'connected', transport }`, `{ status: 'reconnecting', attempt, retryInMs, error }`…
 *
 * ```tsx
 * const state = useConnectionState();
 * return <span>{state.status}</span>;
 * ```
 */
export function useConnectionState(): ConnectionState {
  const client = useCometClient();
  const subscribe = useCallback(
    (onChange: () => void) => client.subscribeState(() => onChange()),
    [client],
  );
  const getSnapshot = useCallback(() => client.getState(), [client]);
  return useSyncExternalStore(subscribe, getSnapshot, getIdle);
}
