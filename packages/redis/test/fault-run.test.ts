/**
 * The fault run of `bench/suites/fault-run.mjs`, short: three instances on a real Redis behind
 * the faulty round-robin front, clients on long-poll and stream sending while the instances
 * publish, one instance killed (its connections dropped, its work abandoned) and started again,
 * Redis restarted without persistence. Nothing lost outside what resets report, nothing twice,
 * nothing out of order, every send answered and published once.
 */
import { randomUUID } from 'node:crypto';
import { createCometClient } from '@cometkit/core';
import { createCometServer } from '@cometkit/server';
import { type FaultRunInstance, runFaultRun, startServer } from '@cometkit/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedisBroker } from '../src/index';
import { redisAvailable, startRedis, type TestRedis } from './redis-server';

describe.skipIf(!redisAvailable)('a short fault run', () => {
  let redis: TestRedis;

  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    await redis?.close();
  });

  it('loses, repeats and reorders nothing and answers every send once across an instance kill and a Redis restart', async () => {
    const keyPrefix = `f${randomUUID()}:`;
    const startInstance = async (_slot: number, port?: number): Promise<FaultRunInstance> => {
      const broker = createRedisBroker({ redis: redis.url, keyPrefix });
      const comet = createCometServer({ broker, maxWait: 2000, coalesceMs: 5 });
      const started = await startServer(comet, port === undefined ? {} : { port });
      let killed = false;
      return {
        url: started.url,
        port: started.port,
        publish: (topic, data) =>
          killed ? Promise.reject(new Error('killed')) : comet.publish(topic, data),
        async kill() {
          // As a crash: connections dropped, nothing drained; whatever was mid-way is abandoned.
          killed = true;
          started.server.closeAllConnections();
          started.server.close();
          await broker.close();
        },
      };
    };
    const report = await runFaultRun({
      createClient: createCometClient,
      startInstance,
      restartRedis: () => redis.restart(),
      messages: 400,
      clients: { longpoll: 2, stream: 2 },
      faultRate: 0.05,
      paceMs: 20,
      timeLimitMs: 60_000,
    });
    if (process.env.COMETKIT_TEST_STATS) console.info(report);
    expect(report.caughtUp).toBe(true);
    expect(report.acknowledged.sends).toBe(200);
    expect(report).toMatchObject({
      lost: 0,
      duplicated: 0,
      reordered: 0,
      sendsUnresolved: 0,
      sendsRejected: 0,
      sendsPublishedTwice: 0,
    });
    // One reset per client and topic: the Redis restart, and nothing else.
    expect(report.resets).toBe(4 * 5);
  }, 90_000);
});
