/**
 * Long-poll on loopback: the server's figures against the targets of issue 3.
 *
 * Run alone:   pnpm --filter @cometkit/server build && node --expose-gc bench/suites/long-poll.mjs
 * Or with the rest: `pnpm bench` (bench/run.mjs imports `run` from here).
 * Broker:      BENCH_BROKER=memory (default) | redis  (see makeBroker below)
 * Profile:     BENCH_CPU_PROF=1 writes the server process's CPU profiles to /tmp/lp-prof
 * Parts:       `latency`, `burst`, `fanout`, `memory` are exported to run one alone.
 *
 * It imports the built `@cometkit/server` (packages/server/dist). The server runs in a child
 * process (this file with `--child-server`), the clients here as raw `node:http` requests on a
 * keep-alive agent, so clients do not take the server's CPU and the memory figure counts only
 * the server. Times are taken on `performance.timeOrigin + performance.now()`, shared by both
 * processes. Every loop is bounded in count and in time (< 60 s in all).
 */
import { fork } from 'node:child_process';
import { Agent, createServer, request } from 'node:http';
import { fileURLToPath } from 'node:url';
import { createCometServer, createMemoryBroker } from '@cometkit/server';

export const name = 'long-poll';

const TARGETS = {
  latencyP99: 2, // ms at 50 msgs/s
  burst: 400_000, // msgs/s
  fanoutP99: 50, // ms to 1 000 held clients
  bytesPerPoll: 10_000, // RSS per held poll
};
// SockJS, the fastest peer measured: 0.41/2.18 ms, 204 000 msgs/s, 85 ms, 32 KB.
const PEER = { latency: '0.41 / 2.18 ms', burst: '204 000', fanout: '85 ms', memory: '32 KB' };

/**
 * The broker under test. `BENCH_BROKER=redis` is for the Redis broker's engineer to wire:
 * start or reach a Redis here and return `@cometkit/redis`'s broker (and close it in `close`).
 */
export async function makeBroker(kind = process.env.BENCH_BROKER ?? 'memory') {
  if (kind === 'memory') {
    // History large enough that the 20 000 burst is never trimmed (that would be a reset).
    const broker = createMemoryBroker({ historySize: 25_000 });
    return { broker, close: () => broker.close() };
  }
  throw new Error(`BENCH_BROKER=${kind}: not wired yet (add it in makeBroker)`);
}

const percentile = (sorted, p) =>
  sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];

function deadline(ms, what) {
  let timer;
  const promise = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took more than ${ms} ms`)), ms);
  });
  return { promise, clear: () => clearTimeout(timer) };
}

/** A bounded wait for `done()`, or throws. */
async function within(ms, what, done) {
  const limit = deadline(ms, what);
  try {
    await Promise.race([done(), limit.promise]);
  } finally {
    limit.clear();
  }
}

async function listen(handler) {
  const server = createServer(handler);
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}

/** POSTs a poll and resolves with the parsed answer. */
function postJson(agent, port, path, body) {
  return new Promise((resolve, reject) => {
    const text = JSON.stringify(body);
    const req = request(
      {
        agent,
        host: '127.0.0.1',
        port,
        path,
        method: 'POST',
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) },
      },
      (res) => {
        const chunks = [];
        res.on('data', (chunk) => chunks.push(chunk));
        res.on('end', () => {
          try {
            resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')));
          } catch (error) {
            reject(error);
          }
        });
      },
    );
    req.on('error', reject);
    req.end(text);
  });
}

/**
 * A polling client: handshakes, then polls in a loop and calls `onMessage` for each message
 * until `stop()`. `held()` is true while a poll waits at the server.
 */
function pollingClient(agent, port, topic, onMessage) {
  let cursors;
  let stopped = false;
  const loop = (async () => {
    cursors = (await postJson(agent, port, '/api/comet', poll(topic))).cursors;
    while (!stopped) {
      const answer = await postJson(agent, port, '/api/comet', poll(topic, cursors, 20_000));
      if (answer.cursors) cursors = answer.cursors;
      for (const message of answer.messages ?? []) onMessage(message);
    }
  })();
  return {
    stop() {
      stopped = true;
      return loop.catch(() => {});
    },
  };
}

function poll(topic, cursors, wait) {
  return { v: 1, sessionGuid: 'bench', topics: [topic], cursors, wait };
}

/** Milliseconds on a clock both processes share (sub-ms resolution). */
const clock = () => performance.timeOrigin + performance.now();

/**
 * Starts the server in a child process, so the clients here do not take its CPU, and gives
 * `fn` its port and an `ask(command)` over IPC.
 */
const children = new Set();

async function withServer(fn, { maxWait } = {}) {
  const child = fork(fileURLToPath(import.meta.url), ['--child-server'], {
    execArgv: [
      '--expose-gc',
      ...(process.env.BENCH_CPU_PROF ? ['--cpu-prof', '--cpu-prof-dir=/tmp/lp-prof'] : []),
    ],
    env: { ...process.env, BENCH_MAX_WAIT: String(maxWait ?? 25_000) },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  children.add(child);
  child.once('exit', () => children.delete(child));
  const waiting = new Map();
  let nextId = 0;
  // The child says `ready` once it listens for commands (earlier ones would be lost).
  const ready = new Promise((resolve) => waiting.set(0, resolve));
  child.on('message', (message) => {
    const resolve = waiting.get(message.id);
    waiting.delete(message.id);
    resolve?.(message);
  });
  const ask = (command) =>
    new Promise((resolve) => {
      nextId += 1;
      waiting.set(nextId, resolve);
      child.send({ ...command, id: nextId });
    });
  const agent = new Agent({ keepAlive: true, maxSockets: Number.POSITIVE_INFINITY });
  try {
    await within(10_000, 'the server process to start', () => ready);
    const { port } = await ask({ type: 'start' });
    return await fn({ port, agent, ask });
  } finally {
    const exited = new Promise((resolve) => child.once('exit', resolve));
    ask({ type: 'close' });
    agent.destroy();
    // The server exits by itself once closed; a stuck one is killed after 2 s.
    const timer = setTimeout(() => child.kill(), 2000);
    await exited;
    clearTimeout(timer);
  }
}

/** Stops the clients' loops, then drains the server so their held polls end at once. */
async function stopClients(list, ask) {
  const stopped = list.map((client) => client.stop());
  await ask({ type: 'drain' });
  await Promise.all(stopped);
}

async function untilHeld(ask, count, what) {
  await within(20_000, what, async () => {
    while ((await ask({ type: 'held' })).held < count) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  });
}

/** One client, a message every 20 ms: publish-to-delivery latency. */
export async function latency() {
  return withServer(async ({ port, agent, ask }) => {
    const count = 250; // 5 s at 50 msgs/s
    const samples = [];
    const client = pollingClient(agent, port, 'lat', (message) =>
      samples.push(clock() - message.data.t),
    );
    await untilHeld(ask, 1, 'the latency client to start');
    await ask({ type: 'paced', topic: 'lat', count, every: 20 });
    await within(5_000, 'the last latency message', async () => {
      while (samples.length < count) await new Promise((resolve) => setTimeout(resolve, 5));
    });
    await stopClients([client], ask);
    samples.sort((a, b) => a - b);
    return { p50: percentile(samples, 50), p99: percentile(samples, 99), count };
  });
}

/** 20 000 messages published at once, one client: delivered messages per second. */
export async function burst() {
  return withServer(async ({ port, agent, ask }) => {
    const total = 20_000;
    let received = 0;
    let lastAt = 0;
    const client = pollingClient(agent, port, 'burst', () => {
      received += 1;
      if (received === total) lastAt = clock();
    });
    await untilHeld(ask, 1, 'the burst client to start');
    const { startedAt } = await ask({ type: 'burst', topic: 'burst', count: total });
    await within(20_000, 'the burst', async () => {
      while (received < total) await new Promise((resolve) => setTimeout(resolve, 2));
    });
    await stopClients([client], ask);
    const seconds = (lastAt - startedAt) / 1000;
    return { perSecond: total / seconds, ms: seconds * 1000 };
  });
}

/** 1 000 held clients, one message: time until each client has it. */
export async function fanout() {
  const clients = 1000;
  const rounds = 3;
  return withServer(async ({ port, agent, ask }) => {
    const samples = [];
    const list = Array.from({ length: clients }, () =>
      pollingClient(agent, port, 'fan', (message) => samples.push(clock() - message.data.t)),
    );
    for (let round = 1; round <= rounds; round += 1) {
      await untilHeld(ask, clients, `${clients} clients to be held`);
      await ask({ type: 'paced', topic: 'fan', count: 1, every: 0 });
      await within(15_000, 'the fan-out', async () => {
        while (samples.length < clients * round) {
          await new Promise((resolve) => setTimeout(resolve, 2));
        }
      });
    }
    await stopClients(list, ask);
    samples.sort((a, b) => a - b);
    return { p50: percentile(samples, 50), p99: percentile(samples, 99), clients, rounds };
  });
}

/** N held polls from here: the server process's RSS growth per poll. */
export async function memory() {
  const held = 2000;
  return withServer(
    async ({ port, agent, ask }) => {
      // Warm up code paths and buffers with a few polls first, so we count per-poll growth.
      await Promise.all(
        Array.from({ length: 20 }, () => postJson(agent, port, '/api/comet', poll('mem', {}, 0))),
      );
      const before = await ask({ type: 'rss' });
      const handshake = await postJson(agent, port, '/api/comet', poll('mem'));
      const pending = Array.from({ length: held }, () =>
        postJson(agent, port, '/api/comet', poll('mem', handshake.cursors, 60_000)).catch(() => {}),
      );
      await untilHeld(ask, held, `${held} polls to be held`);
      const after = await ask({ type: 'rss' });
      await ask({ type: 'drain' });
      await Promise.all(pending);
      return { bytesPerPoll: (after.rss - before.rss) / held, held };
    },
    { maxWait: 60_000 },
  );
}

async function childServer() {
  const { broker, close: closeBroker } = await makeBroker();
  const comet = createCometServer({ broker, maxWait: Number(process.env.BENCH_MAX_WAIT) });
  const server = await listen(comet.handle);
  const reply = (message, body) => process.send({ ...body, id: message.id });
  process.on('message', async (message) => {
    switch (message.type) {
      case 'start':
        return reply(message, { port: server.address().port });
      case 'held':
        return reply(message, { held: comet.stats().waiting });
      case 'rss':
        globalThis.gc?.();
        globalThis.gc?.();
        return reply(message, { rss: process.memoryUsage().rss });
      case 'paced':
        for (let index = 0; index < message.count; index += 1) {
          if (message.every > 0) await new Promise((resolve) => setTimeout(resolve, message.every));
          await comet.publish(message.topic, { t: clock() });
        }
        return reply(message, {});
      case 'burst': {
        const startedAt = clock();
        const publishes = [];
        for (let index = 0; index < message.count; index += 1) {
          publishes.push(comet.publish(message.topic, index));
        }
        await Promise.all(publishes);
        return reply(message, { startedAt });
      }
      case 'drain':
        await comet.close();
        return reply(message, {});
      case 'close':
        await comet.close();
        await closeBroker();
        server.closeAllConnections();
        server.close();
        reply(message, {});
        process.disconnect();
        return;
    }
  });
  // The bench process went away (done, or stopped at its time limit): so does its server.
  process.once('disconnect', () => process.exit(0));
  process.send({ id: 0 });
}

const fmt = (value, digits = 2) =>
  value.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: 0 });

/** Runs every figure and returns rows `{figure, value, target, peer, ok}`; prints them when `print`. */
export async function run({ print = true } = {}) {
  const lat = await latency();
  const bur = await burst();
  const fan = await fanout();
  const mem = await memory();
  const rows = [
    {
      figure: 'latency at 50 msgs/s, p50 / p99',
      value: `${fmt(lat.p50)} / ${fmt(lat.p99)} ms`,
      target: `p99 <= ${TARGETS.latencyP99} ms`,
      peer: PEER.latency,
      ok: lat.p99 <= TARGETS.latencyP99,
    },
    {
      figure: 'burst of 20 000, msgs/s',
      value: `${fmt(bur.perSecond, 0)} (${fmt(bur.ms, 0)} ms)`,
      target: `>= ${fmt(TARGETS.burst, 0)}`,
      peer: PEER.burst,
      ok: bur.perSecond >= TARGETS.burst,
    },
    {
      figure: `fan-out to ${fan.clients} held clients, p50 / p99`,
      value: `${fmt(fan.p50)} / ${fmt(fan.p99)} ms`,
      target: `p99 <= ${TARGETS.fanoutP99} ms`,
      peer: PEER.fanout,
      ok: fan.p99 <= TARGETS.fanoutP99,
    },
    {
      figure: `server RSS per held poll (${mem.held})`,
      value: `${fmt(mem.bytesPerPoll / 1000, 1)} KB`,
      target: `<= ${TARGETS.bytesPerPoll / 1000} KB`,
      peer: PEER.memory,
      ok: mem.bytesPerPoll <= TARGETS.bytesPerPoll,
    },
  ];
  if (print) {
    console.log(`\nlong-poll on loopback (broker: ${process.env.BENCH_BROKER ?? 'memory'})`);
    console.table(
      rows.map((row) => ({
        figure: row.figure,
        value: row.value,
        target: row.target,
        SockJS: row.peer,
        '': row.ok ? 'ok' : 'MISSED',
      })),
    );
  }
  return rows;
}

if (process.argv.includes('--child-server')) {
  await childServer();
} else if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const overall = setTimeout(() => {
    console.error('long-poll bench: over 60 s, stopping');
    for (const child of children) child.kill();
    process.exit(1);
  }, 60_000);
  overall.unref();
  await run();
  process.exit(0);
}
