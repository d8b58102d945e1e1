// What bench/suites/size-what-if.mjs puts in place of packages/core/src/transports/select.ts
// for its long-poll-only figure (never shipped): the same registry with one transport.
import type { TransportName } from '../../packages/core/src/protocol';
import { longPollTransport } from '../../packages/core/src/transports/long-poll';
import type { TransportDefinition } from '../../packages/core/src/transports/types';

export const transportDefinitions: ReadonlyMap<TransportName, TransportDefinition> = new Map([
  ['longpoll', longPollTransport],
]);
