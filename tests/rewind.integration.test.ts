/**
 * Rewind end to end: a real client on each transport against two real server instances sharing
 * a broker (the in-memory one, then Redis), the client on one instance and the publisher on the
 * other. A rewound topic gets exactly its last N messages, then every live one, in order, with
 * no gap and no repeat, also while messages are being published during the subscription.
 */
import { type CometClient, createCometClient, type TransportName } from '@cometkit/core';
import { createRedisBroker } from '@cometkit/redis';
import {
  type Broker,
  type CometServer,
  createCometServer,
  createMemoryBroker,
} from '@cometkit/server';
import { type StartedServer, startServer } from '@cometkit/test-utils';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import WebSocket from 'ws';
import { redisAvailable, startRedis, type TestRedis } from '../packages/redis/test/redis-server';

const TRANSPORTS: TransportName[] = ['websocket', 'stream', 'longpoll'];
const open: Array<{ close(): unknown }> = [];
let redis: TestRedis | undefined;
let prefixes = 0;

beforeAll(async () => {
  if (redisAvailable) redis = await startRedis();
});
afterAll(async () => {
  await redis?.close();
});
afterEach(async () => {
  for (const item of open.splice(0).reverse()) await item.close();
});

/** Two instances on one broker: `a` publishes, the client polls `b`. */
async function instances(kind: 'memory' | 'redis') {
  const brokers: Broker[] = [];
  if (kind === 'memory') {
    const shared = createMemoryBroker();
    brokers.push(shared, shared);
    open.push(shared);
  } else {
    prefixes += 1;
    const keyPrefix = `rewind${prefixes}:`;
    for (let index = 0; index < 2; index += 1) {
      const broker = createRedisBroker({ redis: redis?.url, keyPrefix });
      brokers.push(broker);
      open.push(broker);
    }
  }
  const made: CometServer[] = brokers.map((broker) => createCometServer({ broker }));
  const started: StartedServer[] = [];
  for (const comet of made) {
    const server = await startServer(comet);
    started.push(server);
    open.push(server);
  }
  return { a: made[0] as CometServer, bUrl: `${started[1]?.url}/api/comet` };
}

function client(url: string, transport: TransportName): CometClient {
  const made = createCometClient({
    url,
    transports: [transport],
    wait: 2000,
    environment: {
      WebSocket: () => WebSocket as unknown as typeof globalThis.WebSocket,
      storage: () => undefined,
    },
  });
  open.push(made);
  return made;
}

for (const kind of ['memory', 'redis'] as const) {
  describe.skipIf(kind === 'redis' && !redisAvailable)(`rewind on the ${kind} broker`, () => {
    for (const transport of TRANSPORTS) {
      it(`${transport}: the last N, then live, from another instance`, async () => {
        const { a, bUrl } = await instances(kind);
        for (let i = 0; i < 10; i += 1) await a.publish('room', i);
        const got: number[] = [];
        const c = client(bUrl, transport);
        c.subscribe('room', (data) => got.push(data as number), { rewind: 4 });
        await vi.waitFor(() => expect(got).toEqual([6, 7, 8, 9]), { timeout: 10_000 });
        await vi.waitFor(() => expect(c.getState().status).toBe('connected'));
        await a.publish('room', 10);
        await vi.waitFor(() => expect(got).toEqual([6, 7, 8, 9, 10]), { timeout: 10_000 });
      });

      it(`${transport}: no gap and no repeat while messages are published during the rewind`, async () => {
        const { a, bUrl } = await instances(kind);
        for (let i = 0; i < 100; i += 1) await a.publish('room', i);
        // 200 more, one per event-loop turn, while the client subscribes and rewinds.
        const publishing = (async () => {
          for (let i = 100; i < 300; i += 1) {
            await a.publish('room', i);
            await new Promise((resolve) => setImmediate(resolve));
          }
        })();
        const got: number[] = [];
        const c = client(bUrl, transport);
        c.subscribe('room', (data) => got.push(data as number), { rewind: 50 });
        await publishing;
        await vi.waitFor(() => expect(got.at(-1)).toBe(299), { timeout: 15_000 });
        // The last 50 of at least 100 at the time of the rewind, then everything after.
        const first = got[0] as number;
        expect(first).toBeGreaterThanOrEqual(50);
        expect(got).toEqual(Array.from({ length: 300 - first }, (_, index) => first + index));
        expect(got.length).toBeGreaterThanOrEqual(50);
      });
    }
  });
}
