/**
 * The connection state machine: one pure reducer. Timers and I/O run in the client after it,
 * never inside it, so it is tested as a table with no network and no clock.
 */
import type { CometError } from './errors';
import type { ConnectionState, TransportName } from './types';

/** What happened, as the reducer sees it. */
export type StateEvent =
  /** An attempt begins (first one, retry, or `restart` for `reconnect()` / coming online). */
  | { type: 'connect'; transport: TransportName; restart?: boolean }
  /** The transport is open or a poll was answered. */
  | { type: 'open'; transport: TransportName }
  /** An attempt failed; the next one comes after `retryInMs`. */
  | { type: 'retry'; error: CometError; retryInMs: number }
  /** The runtime lost its network. */
  | { type: 'offline' }
  /** A failure retrying cannot fix. */
  | { type: 'fail'; error: CometError }
  /** No topic left: nothing runs. */
  | { type: 'stop' }
  /** `close()`. */
  | { type: 'close' };

/** The initial state. */
export const IDLE: ConnectionState = { status: 'idle' };

/** The number of the next retry from `state` (1 after a success or at the start). */
export function nextAttempt(state: ConnectionState): number {
  return state.status === 'connecting' || state.status === 'reconnecting' ? state.attempt + 1 : 1;
}

/**
 * The next state. Returns `state` itself when nothing changes, so identity means "no change".
 * `closed` is final; `failed` leaves only on a `restart`, `stop` or `close`.
 */
export function reduce(state: ConnectionState, event: StateEvent): ConnectionState {
  if (state.status === 'closed') return state;
  switch (event.type) {
    case 'close':
      return { status: 'closed' };
    case 'stop':
      return state.status === 'idle' ? state : IDLE;
    case 'fail':
      return { status: 'failed', error: event.error };
    case 'offline':
      return state.status === 'offline' || state.status === 'failed'
        ? state
        : { status: 'offline' };
    case 'open':
      return state.status === 'connected' && state.transport === event.transport
        ? state
        : { status: 'connected', transport: event.transport };
    case 'retry':
      if (state.status === 'failed') return state;
      return {
        status: 'reconnecting',
        attempt: nextAttempt(state),
        retryInMs: event.retryInMs,
        error: event.error,
      };
    case 'connect': {
      if (event.restart) return { status: 'connecting', transport: event.transport, attempt: 0 };
      if (state.status === 'failed') return state;
      // A long-poll re-polls after every answer: that is not a new connection.
      if (state.status === 'connected' && state.transport === event.transport) return state;
      const attempt =
        state.status === 'reconnecting' || state.status === 'connecting' ? state.attempt : 0;
      return state.status === 'connecting' &&
        state.transport === event.transport &&
        state.attempt === attempt
        ? state
        : { status: 'connecting', transport: event.transport, attempt };
    }
  }
}
