import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { createRedisBroker, type RedisBroker } from '../src/index';
import { redisAvailable, startRedis, type TestRedis } from './redis-server';

const cli = process.env.REDIS_CLI ?? 'redis-cli';

/** A real 3-node Redis Cluster on free loopback ports (3 masters, no replicas). */
async function startCluster(): Promise<TestRedis[]> {
  const nodes = await Promise.all(
    [0, 1, 2].map(() => startRedis({ args: ['--cluster-enabled', 'yes'] })),
  );
  const created = spawnSync(
    cli,
    ['--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-yes'],
    { encoding: 'utf8', timeout: 30_000 },
  );
  if (created.status !== 0) {
    throw new Error(`redis-cli --cluster create failed: ${created.stdout}${created.stderr}`);
  }
  // Every node must see the whole cluster before the tests start (bounded: 20 s).
  for (let tries = 0; ; tries += 1) {
    const states = nodes.map(
      (n) => spawnSync(cli, ['-p', String(n.port), 'cluster', 'info'], { encoding: 'utf8' }).stdout,
    );
    if (states.every((info) => info.includes('cluster_state:ok'))) break;
    if (tries === 200) throw new Error(`the cluster did not become ok:\n${states.join('\n')}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return nodes;
}

describe.skipIf(!redisAvailable)('createRedisBroker on a Redis Cluster', () => {
  let nodes: TestRedis[] = [];
  const open: RedisBroker[] = [];

  beforeAll(async () => {
    nodes = await startCluster();
  }, 60_000);
  afterEach(async () => {
    await Promise.all(open.splice(0).map((b) => b.close()));
  });
  afterAll(async () => {
    await Promise.all(nodes.map((n) => n.close()));
  });

  function broker(prefix: string): RedisBroker {
    const made = createRedisBroker({
      cluster: { nodes: nodes.map((n) => ({ host: '127.0.0.1', port: n.port })) },
      keyPrefix: prefix,
    });
    open.push(made);
    return made;
  }

  it("keeps each topic's keys in one slot and spreads topics over the nodes", async () => {
    const prefix = `c${randomUUID()}:`;
    const b = broker(prefix);
    const topics = Array.from({ length: 12 }, (_, n) => `topic-${n}`);
    for (const topic of topics) await b.publish(topic, topic);
    const holders = new Set<number>();
    for (const node of nodes) {
      const client = new Redis(node.url);
      const keys = await client.keys(`${prefix}*`);
      await client.quit();
      // A node that holds a topic's stream holds its meta key too.
      for (const key of keys.filter((k) => k.endsWith(':s'))) {
        expect(keys).toContain(key.replace(/:s$/, ':m'));
      }
      if (keys.some((k) => k.endsWith(':s'))) holders.add(node.port);
    }
    expect(holders.size).toBeGreaterThan(1);
  });

  it('publishes and reads in order on every topic, batched and once per key', async () => {
    const b = broker(`c${randomUUID()}:`);
    const topics = ['a', 'b', 'c', 'd', 'e'];
    const starts = await Promise.all(topics.map((t) => b.read(t, undefined, 1)));
    await Promise.all(topics.flatMap((t) => [1, 2, 3].map((n) => b.publish(t, `${t}${n}`))));
    const once = { idempotency: { key: 'k', ttlMs: 10_000 } };
    const first = await b.publish('a', 'x', once);
    expect(await b.publish('a', 'x', once)).toBe(first);
    for (const [index, topic] of topics.entries()) {
      const read = await b.read(topic, starts[index]?.position, 10);
      const expected = [`${topic}1`, `${topic}2`, `${topic}3`, ...(topic === 'a' ? ['x'] : [])];
      expect(read.messages.map((m) => m.data)).toEqual(expected);
      expect(read.reset).toBe(false);
    }
  });

  it('wakes listeners on another instance for topics on any node', async () => {
    const prefix = `c${randomUUID()}:`;
    const one = broker(prefix);
    const two = broker(prefix);
    const heard: string[] = [];
    const topics = ['x1', 'x2', 'x3', 'x4', 'x5', 'x6'];
    two.listen(topics, (topic) => heard.push(topic));
    await two.read('x1', undefined, 1); // connected and subscribed
    for (const topic of topics) await one.publish(topic, 1);
    await vi.waitFor(() => expect([...heard].sort()).toEqual(topics));
  });
});
