/**
 * Rate limits counted in Redis, so they hold across instances: two `@cometkit/server` instances
 * on one Redis, behind the round-robin test front, with raw requests and a real client.
 */
import { randomUUID } from 'node:crypto';
import { type CometClient, createCometClient, type Diagnostic } from '@cometkit/core';
import { createCometServer, type RateLimitOptions } from '@cometkit/server';
import { createFront, type Front, type StartedServer, startServer } from '@cometkit/test-utils';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { createRedisBroker } from '../src/index';
import { redisAvailable, startRedis, type TestRedis } from './redis-server';

describe.skipIf(!redisAvailable)('rate limits across instances on one Redis', () => {
  let redis: TestRedis;
  let limiterClient: Redis;
  const cleanups: Array<() => Promise<void> | void> = [];

  beforeAll(async () => {
    redis = await startRedis();
    limiterClient = new Redis(redis.url, { enableOfflineQueue: false });
    await new Promise((resolve) => limiterClient.once('ready', resolve));
  });
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });
  afterAll(async () => {
    limiterClient?.disconnect();
    await redis?.close();
  });

  async function instances(rateLimit: Omit<RateLimitOptions, 'redis' | 'keyPrefix'>) {
    const keyPrefix = `r${randomUUID()}:`;
    const started: StartedServer[] = [];
    for (let index = 0; index < 2; index += 1) {
      const broker = createRedisBroker({ redis: redis.url, keyPrefix });
      const comet = createCometServer({
        broker,
        maxWait: 2000,
        rateLimit: { ...rateLimit, redis: limiterClient, keyPrefix: `${keyPrefix}rl` },
      });
      const server = await startServer(comet);
      started.push(server);
      cleanups.push(async () => {
        await server.close();
        await broker.close();
      });
    }
    return started.map((server) => `${server.url}/api/comet`);
  }

  const handshake = (base: string, sessionGuid: string) =>
    fetch(base, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ v: 1, sessionGuid, topics: ['chat'], cursors: {} }),
    });

  it('counts one client across both instances and answers 429 with Retry-After on either', async () => {
    const [one, two] = (await instances({ requests: { points: 2, duration: 60 } })) as [
      string,
      string,
    ];
    expect((await handshake(one, 'tab-1')).status).toBe(200);
    expect((await handshake(two, 'tab-1')).status).toBe(200);
    for (const base of [one, two]) {
      const limited = await handshake(base, 'tab-1');
      expect(limited.status).toBe(429);
      expect(((await limited.json()) as { error: { code: string } }).error.code).toBe(
        'rate_limited',
      );
      const seconds = Number(limited.headers.get('retry-after'));
      expect(seconds).toBeGreaterThanOrEqual(1);
      expect(seconds).toBeLessThanOrEqual(60);
    }
    expect((await handshake(two, 'tab-2')).status).toBe(200);
  });

  it('makes the client wait Retry-After, then it connects again', async () => {
    const bases = await instances({ requests: { points: 1, duration: 2 } });
    const front: Front = await createFront({ targets: bases.map((base) => new URL(base).origin) });
    cleanups.push(() => front.close());
    const client: CometClient = createCometClient({
      url: `${front.url}/api/comet`,
      transports: ['longpoll'],
      wait: 2000,
    });
    cleanups.push(() => client.close());
    const diagnostics: Diagnostic[] = [];
    client.on('diagnostic', (event) => diagnostics.push(event));
    client.subscribe('chat', () => {});
    // The handshake takes the one point of the window; the poll after it gets a 429.
    await vi.waitFor(
      () => {
        const state = client.getState();
        expect(state).toMatchObject({ status: 'reconnecting', error: { status: 429 } });
      },
      { timeout: 10_000, interval: 5 },
    );
    const state = client.getState();
    if (state.status !== 'reconnecting') throw new Error('not reconnecting');
    // It waits what the server said (whole seconds), not its own backoff, plus at most the
    // client's 25 % jitter (clients told the same time do not all come back at once).
    const asked = (state.error as { retryAfterMs?: number }).retryAfterMs ?? Number.NaN;
    expect(asked % 1000).toBe(0);
    expect(asked).toBeGreaterThanOrEqual(1000);
    expect(asked).toBeLessThanOrEqual(2000);
    expect(state.retryInMs).toBeGreaterThanOrEqual(asked);
    expect(state.retryInMs).toBeLessThanOrEqual(asked * 1.25);
    expect(diagnostics.map((event) => event.code)).toContain('retry-after');
    // After the wait, a new window: it connects again.
    await vi.waitFor(() => expect(client.getState().status).toBe('connected'), {
      timeout: 10_000,
    });
  }, 20_000);
});
