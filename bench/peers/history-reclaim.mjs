/**
 * Whether history is reclaimed (issue 13, observation 4): the memory broker's heap with 1 500
 * topics x 60 KB published, then after the age limit; and the number of Redis keys after 100
 * handshake polls of 100 made-up topics each through a real server. Prints both.
 *
 * Usage: pnpm build && node --expose-gc bench/peers/history-reclaim.mjs
 *   COMETKIT_SERVER=/path/to/server/dist/index.js COMETKIT_REDIS=/path/to/redis/dist/index.js
 *   … compares another build (e.g. main's, before the change).
 *   REDIS_URL=redis://127.0.0.1:6379 (default: a redis-server started on a free port)
 */
import { execFileSync, spawn } from 'node:child_process';
import http from 'node:http';
import { createServer as createNetServer } from 'node:net';

if (!globalThis.gc) throw new Error('run with node --expose-gc');
const serverModule = process.env.COMETKIT_SERVER || '@cometkit/server';
const redisModule = process.env.COMETKIT_REDIS || '@cometkit/redis';
const { createCometServer, createMemoryBroker } = await import(serverModule);
const { createRedisBroker } = await import(redisModule);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const heapMb = () => {
  globalThis.gc();
  globalThis.gc();
  return (process.memoryUsage().heapUsed / 1048576).toFixed(1);
};

// 1. Memory broker: 1 500 topics x 60 KB, an age limit of 2 s (the default is 5 minutes; only
// the time to wait differs), a sweep every second where the broker has one.
{
  const before = heapMb();
  const broker = createMemoryBroker({ historyMaxAge: 2000, sweepInterval: 1000 });
  for (let topic = 0; topic < 1500; topic += 1) {
    // A flat string of its own per message (a concatenation would share one pad).
    await broker.publish(`room:${topic}`, {
      topic,
      pad: Buffer.from(String(topic).padStart(60_000, 'x')).toString(),
    });
  }
  const full = heapMb();
  await sleep(3500);
  const after = heapMb();
  console.log(
    `memory broker, 1 500 topics x 60 KB: heap ${before} MB before, ${full} MB published, ${after} MB 3.5 s later (age limit 2 s)`,
  );
  await broker.close();
}

// 2. Redis: keys after 100 handshake polls of 100 made-up topics each.
async function freePort() {
  const probe = createNetServer();
  await new Promise((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address();
  await new Promise((resolve) => probe.close(resolve));
  return port;
}
let redisProcess;
let url = process.env.REDIS_URL;
if (!url) {
  const port = await freePort();
  redisProcess = spawn(
    'redis-server',
    ['--port', String(port), '--save', '', '--appendonly', 'no'],
    {
      stdio: 'ignore',
    },
  );
  url = `redis://127.0.0.1:${port}`;
  await sleep(300);
}
{
  const broker = createRedisBroker({ redis: url });
  const cli = (...args) =>
    execFileSync('redis-cli', ['-u', url, ...args])
      .toString()
      .trim();
  const raw = { flushall: () => cli('flushall'), dbsize: () => Number(cli('dbsize')) };
  raw.flushall();
  await broker.publish('real:a', 1);
  await broker.publish('real:b', 1);
  await broker.publish('real:c', 1);
  const start = await raw.dbsize();
  const comet = createCometServer({ broker });
  const server = http.createServer((req, res) => comet.handle(req, res));
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  for (let poll = 0; poll < 100; poll += 1) {
    const topics = Array.from({ length: 100 }, (_, index) => `made-up:${poll}:${index}`);
    const response = await fetch(`http://127.0.0.1:${port}/api/comet`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ v: 1, sessionGuid: 'probe', topics }),
    });
    await response.text();
  }
  console.log(
    `redis broker, 100 handshake polls of 100 made-up topics: ${start} keys before, ${await raw.dbsize()} after`,
  );
  await comet.close();
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  await broker.close();
}
redisProcess?.kill();
