/**
 * The transports this build implements, by name. The client walks its `transports` option in
 * order and skips a name that is not here (a `transport-skipped` diagnostic).
 */
import type { TransportName } from '../types';
import { createLongPollTransport } from './long-poll';
import { createStreamTransport } from './stream';
import type { TransportFactory } from './types';
import { createWebSocketTransport } from './websocket';

/** Implemented transports. */
export const transportFactories: ReadonlyMap<TransportName, TransportFactory> = new Map([
  ['websocket', createWebSocketTransport],
  ['stream', createStreamTransport],
  ['longpoll', createLongPollTransport],
]);
