/**
 * Several `@cometkit/server` instances on one Redis, behind the round-robin test front (no
 * stickiness), with real `@cometkit/core` clients: what the Redis broker is for.
 */
import { randomUUID } from 'node:crypto';
import { type CometClient, type CometClientOptions, createCometClient } from '@cometkit/core';
import { type CometServer, createCometServer } from '@cometkit/server';
import { createFront, type Front, type StartedServer, startServer } from '@cometkit/test-utils';
import { afterAll, afterEach, beforeAll, describe, expect, it, onTestFinished, vi } from 'vitest';
import {
  createRedisBroker,
  isRedisBrokerError,
  type RedisBroker,
  type RedisBrokerOptions,
} from '../src/index';
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

  function client(options: Partial<CometClientOptions> = {}): CometClient {
    const made = createCometClient({
      url: `${front?.url}/api/comet`,
      wait: 2000,
      backoff: { initialDelay: 20, maxDelay: 250 },
      ...options,
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

  it('recovers clients with a reset when Redis restarts mid-run: nothing hangs, nothing twice, order kept', async () => {
    // History long enough that only the restart, never trimming, can cause a reset.
    await setUp(3, { maxLength: 20_000 });
    const TOPIC = 'mid';
    // Bounds: the load stops at these counts even if a condition below is never met.
    const MAX_PUBLISHES = 6000;
    const MAX_SENDS = 600;

    interface Seen {
      received: Array<{ n: number; id: string }>;
      resets: Array<{ cursor: string | undefined; position: string | undefined; at: number }>;
      sendRetries: number;
    }
    const seen: Seen[] = [];
    // Two clients on the default transports (WebSocket through the front), one on long polls
    // (sends as POSTs that get the 503 themselves).
    const transports = [undefined, undefined, ['longpoll'] as const];
    for (const transport of transports) {
      const c = client(transport ? { transports: transport } : {});
      const mine: Seen = { received: [], resets: [], sendRetries: 0 };
      seen.push(mine);
      c.on('message', (message) => {
        if (message.topic !== TOPIC) return;
        mine.received.push({ n: (message.data as { n: number }).n, id: message.id as string });
      });
      c.on('reset', (event) => {
        if (event.topic === TOPIC) mine.resets.push({ ...event, at: mine.received.length });
      });
      c.on('diagnostic', (diagnostic) => {
        if (diagnostic.code === 'send-retry') mine.sendRetries += 1;
      });
      c.subscribe(TOPIC, () => {});
      await vi.waitFor(() => expect(c.getState().status).toBe('connected'), { timeout: 10_000 });
    }

    // The load: server publishes from random live instances and clients' sends, all at once.
    let next = 0;
    let running = true;
    let publishes = 0;
    let sends = 0;
    let redisDown = false;
    let rejectedWhileDown = 0;
    const resolved: Array<{ n: number; id: string }> = [];
    const sent = new Set<number>();
    const unexpected: unknown[] = [];
    const pending = new Set<Promise<unknown>>();
    const track = <T>(promise: Promise<T>): Promise<T> => {
      pending.add(promise);
      const forget = () => pending.delete(promise);
      promise.then(forget, forget);
      return promise;
    };

    const publisher = async () => {
      while (running && publishes < MAX_PUBLISHES) {
        const group = [];
        for (let k = 0; k < 5 && publishes < MAX_PUBLISHES; k += 1) {
          publishes += 1;
          const n = next++;
          const instance = live()[Math.floor(Math.random() * live().length)] as Instance;
          group.push(
            track(instance.comet.publish(TOPIC, { n })).then(
              (id) => resolved.push({ n, id }),
              (error: unknown) => {
                if (isRedisBrokerError(error) && error.code === 'unavailable') {
                  if (redisDown) rejectedWhileDown += 1;
                } else unexpected.push(error);
              },
            ),
          );
        }
        await Promise.all(group);
        // Let polls and the other loops run; during the outage rejections come at once.
        await new Promise((resolve) => setTimeout(resolve, redisDown ? 5 : 1));
      }
    };
    const sender = async (c: CometClient) => {
      while (running && sends < MAX_SENDS) {
        const batch = [];
        for (let k = 0; k < 3 && sends < MAX_SENDS; k += 1) {
          sends += 1;
          const n = next++;
          sent.add(n);
          // A client send never rejects here: a 503 (or a lost socket) is retried, same id.
          batch.push(
            track(c.send(TOPIC, { n })).then(
              (id) => resolved.push({ n, id: id as string }), // the reference server gives one
              (error: unknown) => unexpected.push(error),
            ),
          );
        }
        await Promise.all(batch);
      }
    };
    // Stops the load however the test ends (a failed wait must not leave it running).
    onTestFinished(() => {
      running = false;
    });
    const load = Promise.all([publisher(), publisher(), ...clients.map((c) => sender(c))]);

    const waitFor = (what: () => void, timeout = 15_000) =>
      vi.waitFor(what, { timeout, interval: 20 });
    // Mid-run: every client has had some messages, and publishes and sends are in flight.
    await waitFor(() => {
      for (const mine of seen) expect(mine.received.length).toBeGreaterThanOrEqual(50);
      expect(pending.size).toBeGreaterThan(0);
    });
    expect(running && publishes < MAX_PUBLISHES).toBe(true);

    redisDown = true;
    await redis.stop();
    // The outage is seen: publishes reject with `unavailable` (at once, not after a timeout).
    await waitFor(() => expect(rejectedWhileDown).toBeGreaterThan(0));
    await redis.start();
    redisDown = false;

    // Every client is told its history is gone and goes on receiving after it.
    await waitFor(() => {
      for (const mine of seen) {
        expect(mine.resets).toHaveLength(1);
        expect(mine.received.length - (mine.resets[0]?.at ?? 0)).toBeGreaterThanOrEqual(50);
      }
    }, 30_000);
    running = false;
    // Nothing hangs: every publish and send settles (the client's sends by being retried).
    // Waited on first, so a hung one fails here with a message rather than at the test timeout.
    await waitFor(() => expect(pending.size).toBe(0));
    await load;
    expect(unexpected).toEqual([]);
    // One last publish, so every client has caught up when it arrives.
    const last = next++;
    resolved.push({
      n: last,
      id: await eventually(() => (instances[0] as Instance).comet.publish(TOPIC, { n: last })),
    });
    await waitFor(() => {
      for (const mine of seen) expect(mine.received.at(-1)?.n).toBe(last);
    });

    const epochOf = (id: string) => id.split(':')[0];
    let duplicatesAcrossReset = 0;
    for (const mine of seen) {
      const [reset] = mine.resets;
      const position = reset?.position as string;
      const before = mine.received.slice(0, reset?.at);
      const after = mine.received.slice(reset?.at);
      // Nothing twice within an epoch, and in the order Redis gave.
      for (const part of [before, after]) {
        expect(new Set(part.map((m) => m.n)).size).toBe(part.length);
      }
      expect(new Set(before.map((m) => epochOf(m.id))).size).toBe(1);
      for (let i = 1; i < before.length; i += 1) {
        const [a, b] = [before[i - 1], before[i]] as [{ id: string }, { id: string }];
        expect(compareIds(a.id, b.id)).toBe(-1);
      }
      // Across the reset, only what docs/guide/scaling.md says: a client's send that was
      // published just before Redis went, lost its answer and idempotency record with it, and
      // was retried (same id) into the new Redis.
      const again = after.filter((m) => before.some((b) => b.n === m.n));
      for (const m of again) expect(sent.has(m.n)).toBe(true);
      duplicatesAcrossReset += again.length;
      // After the reset: exactly what was published in the new epoch after its position.
      expect(epochOf(position)).not.toBe(epochOf(before[0]?.id ?? ''));
      const expected = resolved
        .filter((m) => epochOf(m.id) === epochOf(position) && compareIds(m.id, position) > 0)
        .sort((a, b) => compareIds(a.id, b.id));
      expect(after).toEqual(expected);
    }
    for (const c of clients) expect(c.getState().status).toBe('connected');
    // What the run went through, for whoever reads the log of a failure or a slow run.
    if (process.env.COMETKIT_TEST_STATS) {
      console.info('mid-run restart:', {
        publishes,
        sends,
        rejectedWhileDown,
        sendRetries: seen.map((mine) => mine.sendRetries),
        received: seen.map((mine) => mine.received.length),
        duplicatesAcrossReset,
      });
    }
  }, 50_000);
});
