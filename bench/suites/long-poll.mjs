/**
 * Long-poll on loopback: the server's figures against the targets of issue 3.
 *
 * Run alone:   pnpm --filter @cometkit/server build && node --expose-gc bench/suites/long-poll.mjs
 * Or with the rest: `pnpm bench` (bench/run.mjs imports `run` from here).
 * Broker:      BENCH_BROKER=memory (default) | redis  (see makeBroker below)
 *
 * It imports the built `@cometkit/server` (packages/server/dist). Clients are raw `node:http`
 * requests on a keep-alive agent, in this process, so the figures are the server's plus the
 * cost of one HTTP round trip; the memory figure runs the server in a child process so that
 * only the server's memory is counted. Every loop is bounded in count and in time (< 60 s).
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

async function withServer(fn) {
  const { broker, close: closeBroker } = await makeBroker();
  const comet = createCometServer({ broker });
  const server = await listen(comet.handle);
  const agent = new Agent({ keepAlive: true, maxSockets: Number.POSITIVE_INFINITY });
  try {
    return await fn({ comet, port: server.address().port, agent });
  } finally {
    await comet.close();
    agent.destroy();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    await closeBroker();
  }
}

/** One client, a message every 20 ms: publish-to-delivery latency. */
async function latency() {
  return withServer(async ({ comet, port, agent }) => {
    const samples = [];
    const client = pollingClient(agent, port, 'lat', (message) =>
      samples.push(performance.now() - message.data.t),
    );
    await within(5_000, 'the latency client to start', async () => {
      while (comet.stats().held < 1) await new Promise((resolve) => setTimeout(resolve, 5));
    });
    const count = 250; // 5 s at 50 msgs/s
    for (let index = 0; index < count; index += 1) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      await comet.publish('lat', { t: performance.now() });
    }
    await within(5_000, 'the last latency message', async () => {
      while (samples.length < count) await new Promise((resolve) => setTimeout(resolve, 5));
    });
    await comet.close();
    await client.stop();
    samples.sort((a, b) => a - b);
    return { p50: percentile(samples, 50), p99: percentile(samples, 99), count };
  });
}

/** 20 000 messages published at once, one client: delivered messages per second. */
async function burst() {
  return withServer(async ({ comet, port, agent }) => {
    const total = 20_000;
    let received = 0;
    let done;
    const all = new Promise((resolve) => {
      done = resolve;
    });
    const client = pollingClient(agent, port, 'burst', () => {
      received += 1;
      if (received === total) done();
    });
    await within(5_000, 'the burst client to start', async () => {
      while (comet.stats().held < 1) await new Promise((resolve) => setTimeout(resolve, 5));
    });
    const started = performance.now();
    const publishes = [];
    for (let index = 0; index < total; index += 1) publishes.push(comet.publish('burst', index));
    await Promise.all(publishes);
    await within(20_000, 'the burst', () => all);
    const seconds = (performance.now() - started) / 1000;
    await comet.close();
    await client.stop();
    return { perSecond: total / seconds, ms: seconds * 1000 };
  });
}

/** 1 000 held clients, one message: time until each client has it. */
async function fanout() {
  const clients = 1000;
  const rounds = 5;
  return withServer(async ({ comet, port, agent }) => {
    const samples = [];
    let seen = 0;
    const list = Array.from({ length: clients }, () =>
      pollingClient(agent, port, 'fan', (message) => {
        samples.push(performance.now() - message.data.t);
        seen += 1;
      }),
    );
    for (let round = 1; round <= rounds; round += 1) {
      await within(15_000, `${clients} clients to be held`, async () => {
        while (comet.stats().held < clients) await new Promise((resolve) => setTimeout(resolve, 5));
      });
      await comet.publish('fan', { t: performance.now() });
      await within(15_000, 'the fan-out', async () => {
        while (seen < clients * round) await new Promise((resolve) => setTimeout(resolve, 2));
      });
    }
    await comet.close();
    await Promise.all(list.map((client) => client.stop()));
    samples.sort((a, b) => a - b);
    return { p50: percentile(samples, 50), p99: percentile(samples, 99), clients, rounds };
  });
}

/** The server in a child process, N held polls from here: its RSS growth per poll. */
async function memory() {
  const held = 2000;
  const child = fork(fileURLToPath(import.meta.url), ['--child-server'], {
    execArgv: ['--expose-gc'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const ask = (type) =>
    new Promise((resolve) => {
      child.once('message', resolve);
      child.send({ type });
    });
  const agent = new Agent({ keepAlive: true, maxSockets: Number.POSITIVE_INFINITY });
  try {
    const { port } = await new Promise((resolve) => child.once('message', resolve));
    // Warm up code paths and buffers with a few polls first, so we count per-poll growth.
    await Promise.all(
      Array.from({ length: 20 }, () => postJson(agent, port, '/api/comet', poll('mem', {}, 0))),
    );
    const before = await ask('rss');
    const handshake = await postJson(agent, port, '/api/comet', poll('mem'));
    const pending = Array.from({ length: held }, () =>
      postJson(agent, port, '/api/comet', poll('mem', handshake.cursors, 30_000)).catch(() => {}),
    );
    await within(20_000, `${held} polls to be held`, async () => {
      while ((await ask('held')).held < held)
        await new Promise((resolve) => setTimeout(resolve, 50));
    });
    const after = await ask('rss');
    await ask('close');
    await Promise.all(pending);
    return { bytesPerPoll: (after.rss - before.rss) / held, held };
  } finally {
    agent.destroy();
    child.kill();
  }
}

async function childServer() {
  const comet = createCometServer({ maxWait: 60_000 });
  const server = await listen(comet.handle);
  process.on('message', async (message) => {
    if (message.type === 'rss') {
      globalThis.gc?.();
      globalThis.gc?.();
      process.send({ rss: process.memoryUsage().rss });
    } else if (message.type === 'held') {
      process.send({ held: comet.stats().held });
    } else if (message.type === 'close') {
      await comet.close();
      process.send({ closed: true });
      server.closeAllConnections();
      server.close();
      process.disconnect();
    }
  });
  process.send({ port: server.address().port });
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
    process.exit(1);
  }, 60_000);
  overall.unref();
  await run();
  process.exit(0);
}
