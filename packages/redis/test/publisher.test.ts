/**
 * The publish-only Redis client: a process without a cometkit server publishes, and clients
 * of every server instance on that Redis receive it; once per id, together with the HTTP API.
 */
import { randomUUID } from 'node:crypto';
import { type CometClient, createCometClient } from '@cometkit/core';
import { type CometServer, createCometServer } from '@cometkit/server';
import { type StartedServer, startServer } from '@cometkit/test-utils';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { createRedisBroker, createRedisPublisher, type RedisPublisher } from '../src/index';
import { redisAvailable, startRedis, type TestRedis } from './redis-server';

const KEY = 'publish-key-0123456789';

describe.skipIf(!redisAvailable)('createRedisPublisher', () => {
  let redis: TestRedis;
  let keyPrefix: string;
  const cleanups: Array<() => Promise<void> | void> = [];

  beforeAll(async () => {
    redis = await startRedis();
  });
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });
  afterAll(async () => {
    await redis?.close();
  });

  async function instance(): Promise<{ comet: CometServer; started: StartedServer }> {
    const broker = createRedisBroker({ redis: redis.url, keyPrefix });
    const comet = createCometServer({ broker, maxWait: 2000, publishApi: { key: KEY } });
    const started = await startServer(comet);
    cleanups.push(async () => {
      await started.close();
      await broker.close();
    });
    return { comet, started };
  }

  function publisher(): RedisPublisher {
    const made = createRedisPublisher({ redis: redis.url, keyPrefix });
    cleanups.push(() => made.close());
    return made;
  }

  function client(url: string): CometClient {
    const made = createCometClient({
      url: `${url}/api/comet`,
      transports: ['longpoll'],
      wait: 2000,
    });
    cleanups.push(() => made.close());
    return made;
  }

  it('publishes to clients of two instances without a server of its own', async () => {
    keyPrefix = `p${randomUUID()}:`;
    const [one, two] = [await instance(), await instance()];
    const received: unknown[][] = [[], []];
    for (const [index, server] of [one, two].entries()) {
      const c = client(server.started.url);
      c.subscribe('jobs', (data) => received[index]?.push(data));
      await vi.waitFor(() => expect(c.getState().status).toBe('connected'), { timeout: 10_000 });
    }
    const worker = publisher();
    const id = await worker.publish('jobs', { done: 1 });
    await vi.waitFor(() => expect(received).toEqual([[{ done: 1 }], [{ done: 1 }]]), {
      timeout: 10_000,
    });
    expect((await one.comet.recent('jobs', 5)).messages.map((m) => m.id)).toEqual([id]);
  });

  it('publishes once per id, also when the HTTP publish API got the same id', async () => {
    keyPrefix = `p${randomUUID()}:`;
    const server = await instance();
    const worker = publisher();
    const first = await worker.publish('jobs', 'a', { id: 'job-1' });
    expect(await worker.publish('jobs', 'a', { id: 'job-1' })).toBe(first);
    const response = await fetch(`${server.started.url}/api/comet/_publish`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${KEY}` },
      body: JSON.stringify({ topic: 'jobs', data: 'a', id: 'job-1' }),
    });
    expect(await response.json()).toEqual({ id: 'job-1', messageId: first });
    // And the other way round: the API first, then the worker.
    const api = await fetch(`${server.started.url}/api/comet/_publish`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${KEY}` },
      body: JSON.stringify({ topic: 'jobs', data: 'b', id: 'job-2' }),
    });
    const { messageId } = (await api.json()) as { messageId: string };
    expect(await worker.publish('jobs', 'b', { id: 'job-2' })).toBe(messageId);
    const history = await server.comet.recent('jobs', 10);
    expect(history.messages.map((m) => m.data)).toEqual(['a', 'b']);
  });

  it('checks topics and ids as the server does, and a batch before publishing any', async () => {
    keyPrefix = `p${randomUUID()}:`;
    const server = await instance();
    const worker = publisher();
    await expect(worker.publish('_reserved', 1)).rejects.toMatchObject({
      name: 'CometServerError',
      status: 400,
    });
    await expect(worker.publish('jobs', 1, { id: 'x'.repeat(201) })).rejects.toMatchObject({
      status: 400,
    });
    await expect(
      worker.publishBatch([
        { topic: 'jobs', data: 1 },
        { topic: 'bad topic', data: 2 },
      ]),
    ).rejects.toMatchObject({ status: 400 });
    expect((await server.comet.recent('jobs', 10)).messages).toEqual([]);
    const ids = await worker.publishBatch([
      { topic: 'jobs', data: 1, id: 'b-1' },
      { topic: 'jobs', data: 2 },
    ]);
    expect((await server.comet.recent('jobs', 10)).messages.map((m) => m.id)).toEqual(ids);
  });
});
