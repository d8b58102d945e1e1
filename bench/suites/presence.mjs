/**
 * Presence timings on loopback (docs/concepts/presence.md), printed, never asserted:
 * - join: from a client's first subscribe to its join reaching a client on the other instance;
 * - close: from `client.close()` to its leave reaching the other client;
 * - vanished: from the end of the last request of a client that never comes back (one poll,
 *   then nothing) to its leave, with a short TTL and with the default one (30 s).
 * Two server instances on one broker: the memory broker (shared in process) and Redis (a
 * throwaway `redis-server` when installed, or BENCH_REDIS_URL).
 *
 * Run alone: pnpm --filter "./packages/**" build && node bench/suites/presence.mjs
 * BENCH_PRESENCE_DEFAULT=0 skips the default-TTL measure (about 40 s per broker).
 */
import { spawn, spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { createServer as createNetServer } from 'node:net';
import { createCometClient } from '@cometkit/core';
import { presence } from '@cometkit/core/presence';
import { createRedisBroker } from '@cometkit/redis';
import { createCometServer, createMemoryBroker } from '@cometkit/server';
import { startServer } from '@cometkit/test-utils';

const require = createRequire(import.meta.resolve('@cometkit/server'));
const { WebSocket } = require('ws');
const TRIALS = 5;
const SHORT_TTL = 500;
const withDefault = process.env.BENCH_PRESENCE_DEFAULT !== '0';

const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
const ms = (value) => `${value.toFixed(1)} ms`;

/** Resolves when `condition()` holds; rejects after `limit` ms. */
async function until(condition, limit = 60_000) {
  const started = performance.now();
  while (!condition()) {
    if (performance.now() - started > limit) throw new Error('timed out');
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
  return performance.now();
}

async function freePort() {
  return new Promise((resolve) => {
    const server = createNetServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

async function startRedis() {
  if (process.env.BENCH_REDIS_URL) return { url: process.env.BENCH_REDIS_URL, stop() {} };
  if (spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status !== 0) return undefined;
  const port = await freePort();
  const child = spawn(
    'redis-server',
    ['--port', String(port), '--save', '', '--appendonly', 'no'],
    {
      stdio: 'ignore',
    },
  );
  const url = `redis://127.0.0.1:${port}`;
  const probe = createRedisBroker({ redis: url, keyPrefix: 'probe:' });
  await probe.recent('probe', 0);
  await probe.close();
  return { url, stop: () => child.kill('SIGKILL') };
}

async function instances(makeBroker, ttl) {
  const made = [];
  for (let index = 0; index < 2; index += 1) {
    const broker = makeBroker();
    const comet = createCometServer({ broker, presence: { ttl } });
    const started = await startServer(comet);
    made.push({ broker, started, base: `${started.url}/api/comet` });
  }
  return made;
}

function client(url, userId, transport) {
  return createCometClient({
    url,
    userId,
    transports: [transport],
    environment: { WebSocket: () => WebSocket },
  });
}

/** One trial: join, close and (with a TTL) a vanished client's leave. */
async function trial(makeBroker, ttl, transport, room, vanish) {
  const servers = await instances(makeBroker, ttl);
  const [one, two] = servers;
  const watcher = client(one.base, 'watcher', transport);
  const store = presence(watcher, room);
  const joined = new Map();
  const left = new Map();
  store.on('join', (member) => joined.set(member.userId, performance.now()));
  store.on('leave', (member) => left.set(member.userId, performance.now()));
  store.subscribe(() => {});
  await until(() => store.getSnapshot().length === 1);

  const other = client(two.base, 'other', transport);
  const start = performance.now();
  presence(other, room).subscribe(() => {});
  const join = (await until(() => joined.has('other'))) - start;
  const closedAt = performance.now();
  other.close();
  const close = (await until(() => left.has('other'))) - closedAt;

  let vanished;
  if (vanish) {
    await fetch(two.base, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        v: 1,
        sessionGuid: `ghost-${room}`,
        userId: 'ghost',
        topics: [`${room}@presence`],
      }),
    });
    const endedAt = performance.now();
    vanished = (await until(() => left.has('ghost'), 3 * ttl + 10_000)) - endedAt;
  }
  watcher.close();
  for (const server of servers) {
    await server.started.close();
    await server.broker.close();
  }
  return { join, close, vanished };
}

async function measure(name, makeBroker) {
  console.log(`\n${name}: two instances, watcher on one, the other client on the other`);
  for (const transport of ['websocket', 'stream', 'longpoll']) {
    const runs = [];
    for (let index = 0; index < TRIALS; index += 1) {
      runs.push(await trial(makeBroker, SHORT_TTL, transport, `r${transport}${index}`, index < 3));
    }
    const vanished = runs.map((run) => run.vanished).filter((value) => value !== undefined);
    console.log(
      `  ${transport.padEnd(9)} join ${ms(median(runs.map((run) => run.join)))}  leave on close ${ms(median(runs.map((run) => run.close)))}  vanished (ttl ${SHORT_TTL} ms) ${vanished.map(ms).join(', ')}  (median of ${TRIALS} joins)`,
    );
  }
  if (withDefault) {
    const run = await trial(makeBroker, 30_000, 'longpoll', 'rdefault', true);
    console.log(
      `  default ttl 30 000 ms: join ${ms(run.join)}, vanished client's leave ${ms(run.vanished)} after its last request ended`,
    );
  }
}

let shared;
await measure('memory broker', () => {
  // Both instances share one broker, as two processes share Redis.
  shared ??= createMemoryBroker();
  return { ...shared, presence: shared.presence, close: async () => {} };
});
const redis = await startRedis();
if (redis) {
  try {
    // The two instances of a trial share a key prefix; each trial gets a new one.
    let current = '';
    let made = 0;
    await measure('redis broker', () => {
      if (made % 2 === 0) current = `bench-presence-${made}:`;
      made += 1;
      return createRedisBroker({ redis: redis.url, keyPrefix: current });
    });
  } finally {
    redis.stop();
  }
} else {
  console.log('\nredis broker: redis-server not installed, skipped');
}
await shared?.close();
process.exit(0);
