// What bench/suites/size-what-if.mjs puts in place of packages/core/src/transports/select.ts
// for its long-poll-only figure (never shipped): the same registry with one transport.
import { createLongPollTransport } from '../../packages/core/src/transports/long-poll';
import type { TransportFactory } from '../../packages/core/src/transports/types';
import type { TransportName } from '../../packages/core/src/types';

export const transportFactories: ReadonlyMap<TransportName, TransportFactory> = new Map([
  ['longpoll', createLongPollTransport],
]);
