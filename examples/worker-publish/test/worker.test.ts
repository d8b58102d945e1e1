import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { type CometClient, createCometClient } from '@cometkit/core';
import { createRedisBroker } from '@cometkit/redis';
import { createCometServer } from '@cometkit/server';
import { type StartedServer, startServer } from '@cometkit/test-utils';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  redisAvailable,
  startRedis,
  type TestRedis,
} from '../../../packages/redis/test/redis-server';

const here = (path: string) => fileURLToPath(new URL(path, import.meta.url));

/** Runs the worker to its end; resolves with what it printed, rejects on a non-zero exit. */
function runWorker(env: Record<string, string>): Promise<string> {
  const child = spawn(process.execPath, [here('../worker.mjs')], {
    cwd: here('..'),
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  child.stderr.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(output);
      else reject(new Error(`the worker exited with ${code}:\n${output}`));
    });
  });
}

describe.skipIf(!redisAvailable)('worker-publish example', () => {
  let redis: TestRedis;

  beforeAll(async () => {
    if (!existsSync(here('../../../packages/redis/dist/index.js'))) {
      throw new Error(
        'packages/redis/dist is missing: the worker runs on the built package; run `pnpm build` first',
      );
    }
    redis = await startRedis();
  });
  afterAll(async () => {
    await redis?.close();
  });

  it('publishes from its own process to clients of two instances, once per job step', async () => {
    const keyPrefix = `w${randomUUID()}:`;
    const servers: StartedServer[] = [];
    const brokers = [1, 2].map(() => createRedisBroker({ redis: redis.url, keyPrefix }));
    const clients: CometClient[] = [];
    try {
      for (const broker of brokers) {
        servers.push(await startServer(createCometServer({ broker, maxWait: 2000 })));
      }
      const received: unknown[][] = [[], []];
      for (const [index, server] of servers.entries()) {
        const client = createCometClient({
          url: `${server.url}/api/comet`,
          transports: ['longpoll'],
          wait: 2000,
        });
        clients.push(client);
        client.subscribe('reports', (data) => received[index]?.push(data));
        await vi.waitFor(() => expect(client.getState().status).toBe('connected'), {
          timeout: 10_000,
        });
      }
      const env = { REDIS_URL: redis.url, KEY_PREFIX: keyPrefix, JOB_ID: 'nightly', COUNT: '2' };
      expect(await runWorker(env)).toMatch(/step 2\/2/);
      // A second run of the same job (a retry) publishes nothing new.
      await runWorker(env);
      const expected = [
        { job: 'nightly', step: 1, of: 2 },
        { job: 'nightly', step: 2, of: 2 },
      ];
      await vi.waitFor(() => expect(received).toEqual([expected, expected]), { timeout: 10_000 });
      const history = await brokers[0]?.recent('reports', 10);
      expect(history?.messages).toHaveLength(2);
    } finally {
      for (const client of clients) client.close();
      await Promise.all(servers.map((server) => server.close()));
      await Promise.all(brokers.map((broker) => broker.close()));
    }
  }, 30_000);
});
