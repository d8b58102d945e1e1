/**
 * Presence on a real Redis: two `@cometkit/server` instances, each with its own Redis broker,
 * behind the round-robin test front (no stickiness), real clients with the presence store on
 * each transport, and a client that vanishes without leaving (its leave comes from the TTL,
 * published once although both instances sweep). Short TTLs; every wait is on a condition.
 */
import { randomUUID } from 'node:crypto';
import { type CometClient, createCometClient, type TransportName } from '@cometkit/core';
import { type PresenceStore, presence } from '@cometkit/core/presence';
import { type CometServer, createCometServer } from '@cometkit/server';
import { createFront, type Front, type StartedServer, startServer } from '@cometkit/test-utils';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { createRedisBroker, type RedisBroker } from '../src/index';
import { redisAvailable, startRedis, type TestRedis } from './redis-server';

const TTL = 500;

/** Waits until `condition()` holds: at most 10 s, checked every 10 ms. */
async function until(condition: () => boolean, what: string): Promise<void> {
  const started = Date.now();
  while (!condition()) {
    if (Date.now() - started > 10_000) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe.skipIf(!redisAvailable)('presence on Redis across two instances', () => {
  let redis: TestRedis;
  let keyPrefix: string;
  const brokers: RedisBroker[] = [];
  const servers: StartedServer[] = [];
  const clients: CometClient[] = [];
  let front: Front | undefined;
  let instances: { comet: CometServer; url: string }[] = [];

  beforeAll(async () => {
    redis = await startRedis();
  });
  afterEach(async () => {
    for (const client of clients.splice(0)) client.close();
    await front?.close();
    front = undefined;
    await Promise.all(servers.splice(0).map((server) => server.close()));
    await Promise.all(brokers.splice(0).map((broker) => broker.close()));
  });
  afterAll(async () => {
    await redis?.close();
  });

  async function setUp() {
    keyPrefix = `p${randomUUID()}:`;
    instances = [];
    for (let index = 0; index < 2; index += 1) {
      const broker = createRedisBroker({ redis: redis.url, keyPrefix });
      brokers.push(broker);
      const comet = createCometServer({ broker, maxWait: 1000, presence: { ttl: TTL } });
      const started = await startServer(comet);
      servers.push(started);
      instances.push({ comet, url: `${started.url}/api/comet` });
    }
    front = await createFront({ targets: servers.map((server) => server.url) });
    return `${front.url}/api/comet`;
  }

  function client(url: string, userId: string, transport: TransportName) {
    const made = createCometClient({
      url,
      userId,
      transports: [transport],
      wait: 1000,
      backoff: { initialDelay: 10, maxDelay: 50 },
      environment: { WebSocket: () => WebSocket as unknown as typeof globalThis.WebSocket },
    });
    clients.push(made);
    return made;
  }

  function watch(store: PresenceStore) {
    const seen = { joins: [] as string[], leaves: [] as string[] };
    store.on('join', (member) => seen.joins.push(member.userId ?? member.id));
    store.on('leave', (member) => seen.leaves.push(member.userId ?? member.id));
    store.subscribe(() => {});
    const users = () => store.getSnapshot().map((member) => member.userId);
    return { seen, users };
  }

  for (const transport of ['websocket', 'stream', 'longpoll'] as const) {
    it(`${transport}: every client sees the others join, and leave on close`, async () => {
      const url = await setUp();
      const ann = watch(presence(client(url, 'ann', transport), 'room'));
      const bob = watch(presence(client(url, 'bob', transport), 'room'));
      const carolClient = client(url, 'carol', transport);
      const carol = watch(presence(carolClient, 'room'));
      for (const [name, view] of [
        ['ann', ann],
        ['bob', bob],
        ['carol', carol],
      ] as const) {
        await until(() => view.users().length === 3, `${name} to see all three`);
      }
      carolClient.close();
      await until(() => ann.seen.leaves.includes('carol'), 'ann to see carol leave');
      await until(() => bob.seen.leaves.includes('carol'), 'bob to see carol leave');
      expect(ann.users().sort()).toEqual(['ann', 'bob']);
      expect(bob.seen.leaves).toEqual(['carol']);
    });
  }

  it('publishes the leave of a vanished client once, after its TTL, to clients on both instances', async () => {
    const url = await setUp();
    const ann = watch(presence(client(url, 'ann', 'longpoll'), 'room'));
    const bob = watch(presence(client(url, 'bob', 'websocket'), 'room'));
    await until(() => ann.users().length === 2 && bob.users().length === 2, 'both');
    // One poll straight to the first instance, then nothing: a tab that lost its network.
    const response = await fetch(instances[0]?.url as string, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        v: 1,
        sessionGuid: 'ghost',
        userId: 'ghost',
        topics: ['room@presence'],
      }),
    });
    expect(response.status).toBe(200);
    await until(() => ann.seen.joins.includes('ghost') && bob.seen.joins.includes('ghost'), 'join');
    await until(
      () => ann.seen.leaves.includes('ghost') && bob.seen.leaves.includes('ghost'),
      'leave',
    );
    // Both instances sweep the topic; the history holds one leave of ghost.
    const { messages } = await (brokers[0] as RedisBroker).recent('room@presence', 50);
    const leaves = messages.filter(
      (message) =>
        (message.data as { event: string; member: { userId?: string } }).event === 'leave' &&
        (message.data as { member: { userId?: string } }).member.userId === 'ghost',
    );
    expect(leaves).toHaveLength(1);
    expect(ann.users().sort()).toEqual(['ann', 'bob']);
  });

  it('renews without publishing, and publishes one leave for concurrent sweeps', async () => {
    keyPrefix = `p${randomUUID()}:`;
    const one = createRedisBroker({ redis: redis.url, keyPrefix });
    const two = createRedisBroker({ redis: redis.url, keyPrefix });
    brokers.push(one, two);
    const store = (broker: RedisBroker) => {
      if (!broker.presence) throw new Error('the Redis broker has presence');
      return broker.presence;
    };
    const member = { id: 'm1', userId: 'ann', data: { name: 'Ann' } };
    await store(one).join('room@presence', member, 200);
    await store(two).join('room@presence', member, 200);
    await store(two).join('room@presence', { ...member, data: { name: 'Ann B.' } }, 200);
    const snapshot = await store(one).snapshot('room@presence');
    expect(snapshot.members).toEqual([{ ...member, data: { name: 'Ann B.' } }]);
    // Past the TTL: both sweep at once.
    const started = Date.now();
    await until(() => Date.now() - started > 250, 'the TTL to pass');
    await Promise.all([store(one).sweep('room@presence'), store(two).sweep('room@presence')]);
    const { messages, position } = await one.recent('room@presence', 50);
    expect(messages.map((message) => (message.data as { event: string }).event)).toEqual([
      'join',
      'join',
      'leave',
    ]);
    expect((await store(two).snapshot('room@presence')).position).toBe(position);
  });
});
