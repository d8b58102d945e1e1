/**
 * The transports this build implements, by name. The client walks its `transports` option in
 * order and skips a name that is not here (a `transport-skipped` diagnostic).
 */
import type { TransportName } from '../types';
import { createLongPollTransport } from './long-poll';
import type { TransportFactory } from './types';

/** Implemented transports. The WebSocket and streaming transports register here. */
export const transportFactories: ReadonlyMap<TransportName, TransportFactory> = new Map([
  ['longpoll', createLongPollTransport],
]);
