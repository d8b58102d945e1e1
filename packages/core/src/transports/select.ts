/**
 * The transports this build implements, by name. The ladder walks the `transports` option in
 * order and skips a name that is not here or not supported in this environment (a
 * `transport-skipped` diagnostic).
 */
import type { TransportName } from '../protocol';
import { longPollTransport } from './long-poll';
import { streamTransport } from './stream';
import type { TransportDefinition } from './types';
import { webSocketTransport } from './websocket';

/** Implemented transports. */
export const transportDefinitions: ReadonlyMap<TransportName, TransportDefinition> = new Map(
  [webSocketTransport, streamTransport, longPollTransport].map((definition) => [
    definition.name,
    definition,
  ]),
);
