/**
 * Presence with the memory broker: two server instances sharing one broker, real
 * `@cometkit/core` clients with the `@cometkit/core/presence` store on each transport, raw
 * polls for a client that vanishes. Short TTLs; every wait is on a condition.
 */
import { type CometClient, createCometClient, type TransportName } from '@cometkit/core';
import { type PresenceMember, type PresenceStore, presence } from '@cometkit/core/presence';
import { type StartedServer, startServer } from '@cometkit/test-utils';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { createMemoryBroker, type MemoryBroker } from '../src/brokers/memory';
import { type CometServer, type CometServerOptions, createCometServer } from '../src/index';
import { post } from './helpers';

const TTL = 400;
const clients: CometClient[] = [];
const servers: StartedServer[] = [];
const brokers: MemoryBroker[] = [];

afterEach(async () => {
  for (const client of clients.splice(0)) client.close();
  await Promise.all(servers.splice(0).map((server) => server.close()));
  await Promise.all(brokers.splice(0).map((broker) => broker.close()));
});

/** Waits until `condition()` holds: at most 10 s, checked every 10 ms. */
async function until(condition: () => boolean, what: string): Promise<void> {
  const started = Date.now();
  while (!condition()) {
    if (Date.now() - started > 10_000) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

interface Instance {
  comet: CometServer;
  base: string;
}

/** Two instances on one memory broker (as two processes would share Redis). */
async function twoInstances(options: CometServerOptions = {}) {
  const broker = createMemoryBroker();
  brokers.push(broker);
  const instances: Instance[] = [];
  for (let i = 0; i < 2; i += 1) {
    const comet = createCometServer({ broker, presence: { ttl: TTL }, ...options });
    const started = await startServer(comet);
    servers.push(started);
    instances.push({ comet, base: `${started.url}/api/comet` });
  }
  return { broker, instances: instances as [Instance, Instance] };
}

function client(url: string, userId: string, transport: TransportName = 'longpoll') {
  const made = createCometClient({
    url,
    userId,
    transports: [transport],
    backoff: { initialDelay: 10, maxDelay: 50 },
    environment: { WebSocket: () => WebSocket as unknown as typeof globalThis.WebSocket },
  });
  clients.push(made);
  return made;
}

/** Follows `store`, recording its joins and leaves by userId. */
function watch(store: PresenceStore) {
  const seen = { joins: [] as string[], leaves: [] as string[] };
  store.on('join', (member) => seen.joins.push(member.userId ?? member.id));
  store.on('leave', (member) => seen.leaves.push(member.userId ?? member.id));
  store.subscribe(() => {});
  const users = () => store.getSnapshot().map((member: PresenceMember) => member.userId);
  return { seen, users };
}

describe('presence on the memory broker, across two instances', () => {
  for (const transport of ['websocket', 'stream', 'longpoll'] as const) {
    it(`${transport}: every other client sees a join and the leave of a client that closes`, async () => {
      const { instances } = await twoInstances();
      const [one, two] = instances;
      const ann = watch(presence(client(one.base, 'ann', transport), 'room'));
      await until(() => ann.users().includes('ann'), 'ann to see herself');
      const bobClient = client(two.base, 'bob', transport);
      const bob = watch(presence(bobClient, 'room'));
      await until(() => ann.users().includes('bob'), 'ann to see bob join');
      await until(() => bob.users().length === 2, 'bob to see both');
      expect(ann.seen.joins).toEqual(['bob']);
      expect(bob.users().sort()).toEqual(['ann', 'bob']);

      bobClient.close();
      await until(() => ann.seen.leaves.includes('bob'), 'ann to see bob leave');
      expect(ann.users()).toEqual(['ann']);
    });
  }

  it('publishes the leave of a client that vanished without leaving once its TTL passed', async () => {
    const { instances } = await twoInstances();
    const [one, two] = instances;
    const ann = watch(presence(client(one.base, 'ann'), 'room'));
    await until(() => ann.users().includes('ann'), 'ann to see herself');
    // One poll (a handshake, answered at once), then nothing: a tab that lost its network.
    const answer = await post(two.base, {
      v: 1,
      sessionGuid: 'ghost-session',
      userId: 'ghost',
      topics: ['room@presence'],
    });
    expect(answer.status).toBe(200);
    await until(() => ann.seen.joins.includes('ghost'), 'the join of ghost');
    await until(() => ann.seen.leaves.includes('ghost'), 'the leave of ghost');
    expect(ann.seen.leaves).toEqual(['ghost']);
    expect(ann.users()).toEqual(['ann']);
  });

  it('keeps a client present for many TTLs while it holds a poll, without a write per poll', async () => {
    const { broker, instances } = await twoInstances({ maxWait: 100 });
    const store = broker.presence;
    if (!store) throw new Error('the memory broker has presence');
    let joins = 0;
    const join = store.join;
    (store as { join: typeof join }).join = (...args) => {
      joins += 1;
      return join(...args);
    };
    const [one, two] = instances;
    const ann = watch(presence(client(one.base, 'ann'), 'room'));
    const bob = watch(presence(client(two.base, 'bob'), 'room'));
    await until(() => ann.users().length === 2 && bob.users().length === 2, 'both present');
    const started = Date.now();
    // About 40 long-polls of 100 ms each over 4 TTLs: nobody leaves, and far fewer writes.
    await until(() => Date.now() - started > 4 * TTL, '4 TTLs');
    expect(ann.seen.leaves).toEqual([]);
    expect(bob.seen.leaves).toEqual([]);
    expect(joins).toBeLessThan(20);
  });

  it('asks authorize with action "presence" about the topic, and refuses the presence topic', async () => {
    const asked: string[] = [];
    const { instances } = await twoInstances({
      authorize: ({ action, topic }) => {
        asked.push(`${action} ${topic}`);
        return action !== 'presence';
      },
    });
    const answer = await post(instances[0].base, {
      v: 1,
      sessionGuid: 's-1',
      topics: ['room', 'room@presence'],
    });
    expect(answer.body.errors?.['room@presence']?.code).toBe('forbidden');
    expect(answer.body.errors?.['room@presence']?.message).toContain('presence of topic "room"');
    expect(answer.body.cursors?.room).toBeDefined();
    expect(asked.sort()).toEqual(['poll room', 'presence room']);
  });

  it('refuses sends and publishes to a presence topic', async () => {
    const { instances } = await twoInstances();
    const [{ comet, base }] = instances;
    await expect(comet.publish('room@presence', { event: 'join' })).rejects.toThrow(/presence/);
    const answer = await post(`${base}/room%40presence`, {
      v: 1,
      sessionGuid: 's-1',
      id: 'send-1',
      data: { event: 'join', member: { id: 'x' } },
    });
    expect(answer.status).toBe(400);
  });

  it('shows what the member hook allows, and drops data over dataLimit', async () => {
    const { instances } = await twoInstances({
      presence: {
        ttl: TTL,
        dataLimit: 32,
        member: ({ userId }) =>
          userId === 'big' ? { userId, data: 'x'.repeat(100) } : { userId, data: { name: 'Ann' } },
      },
    });
    const base = instances[0].base;
    const ann = presence(client(base, 'ann'), 'room');
    watch(ann);
    await until(() => ann.getSnapshot().length === 1, 'ann');
    expect(ann.getSnapshot()[0]?.data).toEqual({ name: 'Ann' });
    watch(presence(client(base, 'big'), 'room'));
    await until(() => ann.getSnapshot().length === 2, 'big');
    const big = ann.getSnapshot().find((member) => member.userId === 'big');
    expect(big).toBeDefined();
    expect(big?.data).toBeUndefined();
    // The member id is not the session: a sessionGuid stays secret.
    expect(big?.id).toMatch(/^[\w-]{16}$/);
    expect(big?.id).not.toBe(clients.at(-1)?.sessionGuid);
  });

  it('answers a sync with the members after a handshake, and a leave request removes one', async () => {
    const { instances } = await twoInstances();
    const base = instances[0].base;
    await post(base, { v: 1, sessionGuid: 'sa', userId: 'a', topics: ['room@presence'] });
    await post(base, { v: 1, sessionGuid: 'sb', userId: 'b', topics: ['room@presence'] });
    const sync = await post(base, { v: 1, sessionGuid: 'sc', topics: ['room@presence'] });
    const first = sync.body.messages?.[0];
    expect(first?.topic).toBe('room@presence');
    expect(first?.id).toBe(sync.body.cursors?.['room@presence']);
    const members = (first?.data as { members: PresenceMember[] } | undefined)?.members ?? [];
    expect(members.map((member) => member.userId).sort()).toEqual(['a', 'b', undefined]);

    expect(
      (await post(`${base}/_leave`, { v: 1, sessionGuid: 'sa', topics: ['room@presence'] })).status,
    ).toBe(200);
    const after = await post(base, {
      v: 1,
      sessionGuid: 'sc',
      topics: ['room@presence'],
      cursors: { 'room@presence': first?.id },
    });
    expect(after.body.messages?.map((message) => message.data)).toEqual([
      { event: 'leave', member: expect.objectContaining({ userId: 'a' }) },
    ]);
  });
});
