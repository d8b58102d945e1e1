/**
 * Several `@cometkit/server` instances on one Redis, behind the round-robin test front (no
 * stickiness), with real `@cometkit/core` clients: what the Redis broker is for.
 */
import { randomUUID } from 'node:crypto';
import { type CometClient, createCometClient } from '@cometkit/core';
import { type CometServer, createCometServer } from '@cometkit/server';
import { createFront, type Front, type StartedServer, startServer } from '@cometkit/test-utils';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { createRedisBroker, type RedisBroker, type RedisBrokerOptions } from '../src/index';
import { redisAvailable, startRedis, type TestRedis } from './redis-server';

interface Instance {
  port: number;
  broker: RedisBroker;
  comet: CometServer;
  started: StartedServer | undefined;
}

/** Retries `attempt` until it resolves: at most 200 tries, 50 ms apart (10 s). */
async function eventually<T>(attempt: () => Promise<T>): Promise<T> {
  let lastError: unknown;
  for (let tries = 0; tries < 200; tries += 1) {
    try {
      return await attempt();
    } catch (error) {
      lastError = error;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  throw lastError;
}

/** Orders `<epoch>:<ms>-<seq>` ids of one epoch as Redis does: by ms, then seq. */
function compareIds(a: string, b: string): number {
  const parse = (id: string) => (id.split(':')[1] ?? '').split('-').map(BigInt);
  const [am = 0n, as = 0n] = parse(a);
  const [bm = 0n, bs = 0n] = parse(b);
  if (am !== bm) return am < bm ? -1 : 1;
  return as === bs ? 0 : as < bs ? -1 : 1;
}

describe.skipIf(!redisAvailable)('several instances on Redis behind a round-robin front', () => {
  let redis: TestRedis;
  let keyPrefix: string;
  let instances: Instance[] = [];
  let front: Front | undefined;
  let clients: CometClient[] = [];

  beforeAll(async () => {
    redis = await startRedis();
  });
  afterEach(async () => {
    for (const client of clients) client.close();
    clients = [];
    await front?.close();
    front = undefined;
    await Promise.all(instances.map((instance) => stopInstance(instance)));
    instances = [];
  });
  afterAll(async () => {
    await redis?.close();
  });

  async function startInstance(port = 0, options: RedisBrokerOptions = {}): Promise<Instance> {
    const broker = createRedisBroker({ redis: redis.url, keyPrefix, ...options });
    // Short holds so that closing an instance does not wait long for its held polls.
    // A few ms of coalescing, so a burst goes out as one answer rather than one per message.
    const comet = createCometServer({ broker, maxWait: 2000, coalesceMs: 5 });
    const started = await startServer(comet, { port });
    return { port: started.port, broker, comet, started };
  }

  async function stopInstance(instance: Instance): Promise<void> {
    const started = instance.started;
    instance.started = undefined;
    await started?.close();
    await instance.broker.close();
  }

  async function setUp(count: number, options: RedisBrokerOptions = {}) {
    keyPrefix = `s${randomUUID()}:`;
    for (let index = 0; index < count; index += 1) {
      instances.push(await startInstance(0, options));
    }
    front = await createFront({
      targets: instances.map((instance) => `http://127.0.0.1:${instance.port}`),
    });
  }

  function client(): CometClient {
    const made = createCometClient({
      url: `${front?.url}/api/comet`,
      wait: 2000,
      backoff: { initialDelay: 20, maxDelay: 250 },
    });
    clients.push(made);
    return made;
  }

  const live = () => instances.filter((instance) => instance.started);

  it('delivers 10 000 messages from random instances to every client once and in order while instances restart', async () => {
    const TOTAL = 10_000;
    const GROUP = 25;
    // History must cover the longest gap a client can have (here: an instance restart plus
    // backoff); 1000 messages, the default, may be published in that time.
    await setUp(3, { maxLength: 20_000 });
    const received: number[][] = [[], [], []];
    const resets: string[] = [];
    for (const list of received) {
      const c = client();
      c.on('reset', (event) => resets.push(event.topic));
      c.subscribe('load', (data) => list.push((data as { n: number }).n));
      await vi.waitFor(() => expect(c.getState().status).toBe('connected'), { timeout: 10_000 });
    }

    // Publish in concurrent groups from random instances; Redis decides the order within a
    // group, so the expected order is the order of the ids the publishes got.
    const published: Array<{ n: number; id: string }> = [];
    const publishGroup = async (from: number, to: number) => {
      const group = [];
      for (let n = from; n < to; n += 1) {
        const instance = live()[Math.floor(Math.random() * live().length)] as Instance;
        group.push(instance.comet.publish('load', { n }).then((id) => published.push({ n, id })));
      }
      await Promise.all(group);
    };
    let restarts = 0;
    for (let n = 0; n < TOTAL; n += GROUP) {
      if (n % 2000 === 1000) {
        // Close one instance, publish through the others while it is away, start it again.
        const victim = instances[restarts % instances.length] as Instance;
        await stopInstance(victim);
        restarts += 1;
        for (const end = n + 200; n < end; n += GROUP) await publishGroup(n, n + GROUP);
        const again = await startInstance(victim.port, { maxLength: 20_000 });
        instances[instances.indexOf(victim)] = again;
      }
      await publishGroup(n, Math.min(n + GROUP, TOTAL));
    }
    expect(restarts).toBe(5);
    expect(published).toHaveLength(TOTAL);

    await vi.waitFor(
      () => {
        for (const list of received) expect(list.length).toBeGreaterThanOrEqual(TOTAL);
      },
      { timeout: 30_000, interval: 100 },
    );
    const expected = published.sort((a, b) => compareIds(a.id, b.id)).map((entry) => entry.n);
    expect(new Set(expected).size).toBe(TOTAL);
    for (const list of received) expect(list).toEqual(expected);
    expect(resets).toEqual([]);
    // Every instance served polls: the front spread them with no stickiness.
    for (const count of front?.counts().values() ?? []) expect(count).toBeGreaterThan(0);
  }, 50_000);

  it('publishes a retried send once when the retry lands on another instance', async () => {
    await setUp(2);
    const [one, two] = instances as [Instance, Instance];
    const body = JSON.stringify({ v: 1, sessionGuid: randomUUID(), id: randomUUID(), data: 'hi' });
    const send = async (instance: Instance) => {
      const response = await fetch(`http://127.0.0.1:${instance.port}/api/comet/chat`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body,
      });
      return { status: response.status, body: (await response.json()) as { messageId?: string } };
    };
    const first = await send(one);
    const retry = await send(two);
    expect(first.status).toBe(200);
    expect(retry).toEqual(first);
    // Both at once on two instances: still one message.
    const other = JSON.stringify({ v: 1, sessionGuid: randomUUID(), id: randomUUID(), data: 'yo' });
    const both = await Promise.all(
      [one, two].map(async (instance) => {
        const response = await fetch(`http://127.0.0.1:${instance.port}/api/comet/chat`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: other,
        });
        return (await response.json()) as { messageId?: string };
      }),
    );
    expect(both[0]?.messageId).toBeDefined();
    expect(both[1]?.messageId).toBe(both[0]?.messageId);
    const history = await two.comet.recent('chat', 10);
    expect(history.messages.map((message) => message.data)).toEqual(['hi', 'yo']);
    expect(history.messages.map((message) => message.id)).toEqual([
      first.body.messageId,
      both[0]?.messageId,
    ]);
  });

  it('recovers clients with a reset when Redis restarts and loses the history', async () => {
    await setUp(3);
    const received: string[][] = [[], [], []];
    const resets: string[][] = [[], [], []];
    for (const [index, list] of received.entries()) {
      const c = client();
      c.on('reset', (event) => resets[index]?.push(event.topic));
      c.subscribe('news', (data) => list.push(data as string));
      await vi.waitFor(() => expect(c.getState().status).toBe('connected'), { timeout: 10_000 });
    }
    await (instances[0] as Instance).comet.publish('news', 'before');
    await vi.waitFor(() => {
      for (const list of received) expect(list).toEqual(['before']);
    });

    await redis.restart();
    // Clients come back through any instance, are told their history is gone, and go on.
    await vi.waitFor(
      () => {
        for (const list of resets) expect(list).toEqual(['news']);
      },
      { timeout: 20_000, interval: 50 },
    );
    await eventually(() => (instances[1] as Instance).comet.publish('news', 'after'));
    await vi.waitFor(
      () => {
        for (const list of received) expect(list).toEqual(['before', 'after']);
      },
      { timeout: 10_000, interval: 50 },
    );
    for (const c of clients) expect(c.getState().status).toBe('connected');
  }, 45_000);
});
