/**
 * Long-poll on loopback: the server's figures against the targets of issue 3.
 *
 * Run alone:   pnpm --filter @cometkit/server build && node --expose-gc bench/suites/long-poll.mjs
 * Or with the rest: `pnpm bench` (bench/run.mjs imports `run` from here).
 * Broker:      BENCH_BROKER=memory (default) | redis. Redis: BENCH_REDIS_URL, or a throwaway
 *              `redis-server` is started (free port, no persistence) and killed at the end.
 *              The Redis broker needs a build: pnpm --filter @cometkit/redis build
 * Profile:     BENCH_CPU_PROF=1 writes the server process's CPU profiles to /tmp/lp-prof
 * Parts:       `latency`, `burst`, `fanout`, `memory`, `floor` are exported to run one alone;
 *              BENCH_ONLY=burst,fanout runs some from the command line.
 *
 * What is measured, and where:
 * - The server (built `@cometkit/server`) runs alone in a child process (this file with
 *   `--child-server`), so clients never take its CPU and the memory figure is the server's.
 * - Clients are lean raw `net` sockets with hand-written HTTP/1.1 keep-alive requests. Each
 *   answer's time is taken when its first byte arrives, before anything is parsed (parsing is
 *   deferred past the timestamp, and the fan-out clients parse nothing: the cursor is the id
 *   the publish returned). So a figure is the server's time plus loopback, not the bench's
 *   own JSON work. 1 000 sockets in one client process still take turns in its event loop:
 *   the fan-out figure includes that (about 1 µs per socket, read from the kernel in batches).
 * - Publish times are taken by the server process just before `publish` on
 *   `performance.timeOrigin + performance.now()`, a clock both processes share.
 * Every phase is bounded in time (the whole run too), and no process outlives the run: the
 * server child and any `redis-server` are killed on every exit path.
 */
import { fork, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { createServer as createNetServer, connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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

/** Every process this run started (server children, redis-server): killed on any exit. */
const children = new Set();

function track(child) {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

function killChildren() {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
}

// Synchronous on purpose: `exit` handlers cannot wait, and a kill signal is all it takes.
process.on('exit', killChildren);

async function freePort() {
  return new Promise((resolve, reject) => {
    const server = createNetServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

const REDIS_STARTUP_MS = 10_000;

/**
 * Starts a throwaway `redis-server` on a free loopback port (no persistence, a temp dir).
 * Its output is piped, never inherited: a leftover process holding the bench's stdout would
 * keep whoever reads that output waiting. Resolves `{url, close}`.
 */
export async function startRedisServer() {
  const dir = mkdtempSync(join(tmpdir(), 'cometkit-bench-redis-'));
  const cleanup = () => rmSync(dir, { recursive: true, force: true });
  for (let attempt = 1; attempt <= 3; attempt += 1) {
    const port = await freePort();
    const proc = track(
      spawn(
        process.env.REDIS_SERVER ?? 'redis-server',
        ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
        { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] },
      ),
    );
    proc.once('exit', cleanup);
    const started = await new Promise((resolve) => {
      let output = '';
      const timer = setTimeout(
        () => resolve({ error: `no "Ready" within ${REDIS_STARTUP_MS} ms` }),
        REDIS_STARTUP_MS,
      );
      const onData = (chunk) => {
        output += chunk;
        if (output.includes('Ready to accept connections')) {
          clearTimeout(timer);
          proc.stdout.off('data', onData);
          proc.stdout.resume();
          resolve({});
        }
      };
      proc.stdout.on('data', onData);
      proc.stderr.on('data', (chunk) => {
        output += chunk;
      });
      proc.once('error', (error) => {
        clearTimeout(timer);
        resolve({ error: error.message });
      });
      proc.once('exit', (code) => {
        clearTimeout(timer);
        resolve({ error: `exited with ${code}: ${output.slice(-500)}` });
      });
    });
    if (!started.error) {
      const close = () =>
        new Promise((resolve) => {
          if (proc.exitCode !== null || proc.signalCode !== null) return resolve();
          proc.once('exit', () => resolve());
          proc.kill('SIGKILL');
        });
      return { url: `redis://127.0.0.1:${port}`, close };
    }
    proc.kill('SIGKILL');
    // The port may have been taken between finding it and Redis binding it: try another.
    if (attempt === 3) throw new Error(`redis-server did not start: ${started.error}`);
  }
  throw new Error('unreachable');
}

/**
 * The broker under test: `memory`, or `redis` on `BENCH_REDIS_URL` (or a throwaway
 * `redis-server` started here, killed by `close`). Imports the built `@cometkit/redis`.
 */
export async function makeBroker(kind = process.env.BENCH_BROKER ?? 'memory') {
  if (kind === 'memory') {
    // History large enough that the 20 000 burst is never trimmed (that would be a reset).
    const broker = createMemoryBroker({ historySize: 25_000 });
    return { broker, close: () => broker.close() };
  }
  if (kind === 'redis') {
    const { createRedisBroker } = await import('@cometkit/redis');
    const own = process.env.BENCH_REDIS_URL ? undefined : await startRedisServer();
    const broker = createRedisBroker({
      redis: process.env.BENCH_REDIS_URL ?? own.url,
      keyPrefix: `bench:${process.pid}:${Date.now()}:`,
      maxLength: 25_000,
    });
    return {
      broker,
      close: async () => {
        await broker.close().catch(() => {});
        await own?.close();
      },
    };
  }
  throw new Error(`BENCH_BROKER=${kind}: expected memory or redis`);
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
    return await Promise.race([done(), limit.promise]);
  } finally {
    limit.clear();
  }
}

/** Milliseconds on a clock both processes share (sub-ms resolution). */
const clock = () => performance.timeOrigin + performance.now();

/**
 * One keep-alive HTTP/1.1 connection over a raw socket, one request at a time. `post(body)`
 * resolves `{at, status, body}`: `at` is when the answer's first byte arrived (taken before
 * any parsing), `body` the raw bytes. Enough HTTP for this server's answers (Content-Length).
 */
function rawClient(port, path = '/api/comet') {
  const socket = netConnect({ port, host: '127.0.0.1', noDelay: true });
  socket.on('error', () => {});
  let pending;
  let chunks = [];
  let size = 0;
  let at = 0;
  let headEnd = -1;
  let status = 0;
  let length = -1;
  const reset = () => {
    chunks = [];
    size = 0;
    headEnd = -1;
    length = -1;
  };
  socket.on('data', (chunk) => {
    if (!pending) return;
    if (size === 0) at = clock();
    chunks.push(chunk);
    size += chunk.length;
    const all = chunks.length === 1 ? chunk : Buffer.concat(chunks);
    chunks = [all];
    if (headEnd === -1) {
      headEnd = all.indexOf('\r\n\r\n');
      if (headEnd === -1) return;
      const head = all.toString('latin1', 0, headEnd);
      status = Number(head.slice(9, 12));
      const match = /\r\ncontent-length: *(\d+)/i.exec(head);
      length = match ? Number(match[1]) : 0;
    }
    if (size < headEnd + 4 + length) return;
    const done = pending;
    pending = undefined;
    const body = all.subarray(headEnd + 4, headEnd + 4 + length);
    reset();
    done.resolve({ at, status, body });
  });
  socket.on('close', () => {
    const done = pending;
    pending = undefined;
    done?.reject(new Error('connection closed'));
  });
  const ready = new Promise((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  return {
    ready,
    post(text) {
      return new Promise((resolve, reject) => {
        pending = { resolve, reject };
        socket.write(
          `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(text)}\r\n\r\n${text}`,
        );
      });
    },
    close: () => socket.destroy(),
  };
}

function poll(topic, cursors, wait) {
  return JSON.stringify({ v: 1, sessionGuid: 'bench', topics: [topic], cursors, wait });
}

/** The cursor of `topic` in an answer, found without parsing the whole body. */
function cursorOf(body, topic) {
  const key = `"cursors":{"${topic}":"`;
  const from = body.lastIndexOf(key);
  if (from === -1) throw new Error(`no cursor in ${body.toString().slice(0, 200)}`);
  const start = from + key.length;
  return body.toString('latin1', start, body.indexOf('"', start));
}

/**
 * Starts the server in a child process (`mode`: `comet`, or `bare` for an empty `node:http`
 * server that holds requests without answering: the floor) and gives `fn` its port and an
 * `ask(command)` over IPC. The child's output is piped through, not inherited.
 */
async function withServer(fn, { maxWait, mode = 'comet' } = {}) {
  const child = track(
    fork(fileURLToPath(import.meta.url), ['--child-server', mode], {
      execArgv: [
        '--expose-gc',
        ...(process.env.BENCH_CPU_PROF ? ['--cpu-prof', '--cpu-prof-dir=/tmp/lp-prof'] : []),
      ],
      env: { ...process.env, BENCH_MAX_WAIT: String(maxWait ?? 25_000) },
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    }),
  );
  child.stdout.pipe(process.stdout, { end: false });
  child.stderr.pipe(process.stderr, { end: false });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const waiting = new Map();
  let nextId = 0;
  // The child says `ready` once it listens for commands (earlier ones would be lost).
  const ready = new Promise((resolve) => waiting.set(0, resolve));
  child.on('message', (message) => {
    const resolve = waiting.get(message.id);
    waiting.delete(message.id);
    resolve?.(message);
  });
  const ask = (command, ms = 30_000) =>
    within(ms, `the server's answer to ${command.type}`, () =>
      Promise.race([
        new Promise((resolve) => {
          nextId += 1;
          waiting.set(nextId, resolve);
          child.send({ ...command, id: nextId });
        }),
        exited.then((code) => {
          throw new Error(`the server process exited (${code}) during ${command.type}`);
        }),
      ]),
    );
  try {
    await within(15_000, 'the server process to start', () => ready);
    const { port } = await ask({ type: 'start' });
    return await fn({ port, ask });
  } finally {
    if (child.connected) child.send({ type: 'close', id: -1 });
    // The server exits by itself once closed; a stuck one is killed after 3 s.
    const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
    await exited;
    clearTimeout(timer);
  }
}

async function untilHeld(ask, count, what) {
  await within(20_000, what, async () => {
    while ((await ask({ type: 'held' })).held < count) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  });
}

async function connected(count, port) {
  const list = Array.from({ length: count }, () => rawClient(port));
  await within(10_000, `${count} connections`, () => Promise.all(list.map((c) => c.ready)));
  return list;
}

/**
 * One client, a message every 20 ms (250 of them): publish (server clock, just before
 * `publish`) to the first byte of the answer carrying it.
 */
export async function latency() {
  return withServer(async ({ port, ask }) => {
    const count = 250; // 5 s at 50 msgs/s
    const samples = [];
    const [client] = await connected(1, port);
    let stopped = false;
    const loop = (async () => {
      let cursor = cursorOf((await client.post(poll('lat'))).body, 'lat');
      while (!stopped && samples.length < count) {
        const answer = await client.post(poll('lat', { lat: cursor }, 20_000));
        // Parsed after the timestamp was taken, off the timing path.
        const parsed = JSON.parse(answer.body);
        for (const message of parsed.messages ?? []) samples.push(answer.at - message.data.t);
        cursor = parsed.cursors.lat;
      }
    })();
    // Closing the socket at the end rejects a poll still held: expected, not a failure.
    loop.catch(() => {});
    try {
      await untilHeld(ask, 1, 'the latency client to start');
      await ask({ type: 'paced', topic: 'lat', count, every: 20 }, 20_000);
      await within(10_000, 'the last latency message', () => loop);
    } finally {
      stopped = true;
      client.close();
    }
    samples.sort((a, b) => a - b);
    return { p50: percentile(samples, 50), p99: percentile(samples, 99), count };
  });
}

/**
 * 20 000 messages published at once (all started in one turn; the Redis broker pipelines
 * them), one client polling with the server's batch limit (1 000): from the first publish
 * to the first byte of the answer that carries the last message.
 */
export async function burst() {
  return withServer(async ({ port, ask }) => {
    const total = 20_000;
    const [client] = await connected(1, port);
    let last;
    let lastAt = 0;
    let stopped = false;
    const seen = new Map();
    const loop = (async () => {
      let cursor = cursorOf((await client.post(poll('burst'))).body, 'burst');
      while (!stopped) {
        const answer = await client.post(poll('burst', { burst: cursor }, 20_000));
        cursor = cursorOf(answer.body, 'burst');
        seen.set(cursor, answer.at);
        if (cursor === last) {
          lastAt = answer.at;
          return;
        }
      }
    })();
    loop.catch(() => {});
    try {
      await untilHeld(ask, 1, 'the burst client to start');
      const reply = await ask({ type: 'burst', topic: 'burst', count: total }, 30_000);
      last = reply.lastId;
      if (seen.has(last)) lastAt = seen.get(last);
      else await within(30_000, 'the burst to arrive', () => loop);
      const seconds = (lastAt - reply.startedAt) / 1000;
      return { perSecond: total / seconds, ms: seconds * 1000, publishMs: reply.publishMs };
    } finally {
      stopped = true;
      client.close();
    }
  });
}

/**
 * 1 000 held clients (1 000 sockets), one message, 5 rounds: from the publish to the first
 * byte of each client's answer. Nothing is parsed: the next cursor is the published id.
 */
export async function fanout() {
  const clients = 1000;
  const rounds = 5;
  return withServer(async ({ port, ask }) => {
    const samples = [];
    const list = await connected(clients, port);
    try {
      const first = await within(20_000, 'the handshakes', () =>
        Promise.all(list.map((client) => client.post(poll('fan')))),
      );
      let cursor = cursorOf(first[0].body, 'fan');
      for (let round = 1; round <= rounds; round += 1) {
        const answers = list.map((client) => client.post(poll('fan', { fan: cursor }, 20_000)));
        await untilHeld(ask, clients, `${clients} clients to be held`);
        const { t, messageId: id } = await ask({ type: 'paced', topic: 'fan', count: 1, every: 0 });
        const got = await within(15_000, 'the fan-out', () => Promise.all(answers));
        for (const answer of got) {
          samples.push(answer.at - t);
          if (answer.status !== 200 || !answer.body.includes(id)) {
            throw new Error(
              `a fan-out answer lacks message ${id} (status ${answer.status}): ${answer.body}`,
            );
          }
        }
        cursor = id;
      }
    } finally {
      for (const client of list) client.close();
    }
    samples.sort((a, b) => a - b);
    return { p50: percentile(samples, 50), p99: percentile(samples, 99), clients, rounds };
  });
}

/**
 * 2 000 held polls (2 000 keep-alive sockets): the server process's RSS growth per held poll
 * (after two GCs), against a baseline with 20 warm-up requests done. `mode: 'bare'` measures
 * the floor: a `node:http` server that only holds requests (no body read, no answer).
 */
export async function memory({ mode = 'comet' } = {}) {
  const held = 2000;
  return withServer(
    async ({ port, ask }) => {
      const warm = await connected(20, port);
      if (mode === 'comet') {
        await Promise.all(warm.map((client) => client.post(poll('mem', {}, 0))));
      }
      for (const client of warm) client.close();
      const before = await ask({ type: 'rss' });
      const list = await connected(held, port);
      let cursors = {};
      if (mode === 'comet')
        cursors = { mem: cursorOf((await list[0].post(poll('mem'))).body, 'mem') };
      const pending = list.map((client) =>
        client.post(poll('mem', cursors, 60_000)).catch(() => {}),
      );
      await untilHeld(ask, held, `${held} polls to be held`);
      const after = await ask({ type: 'rss' });
      for (const client of list) client.close();
      await Promise.all(pending);
      return {
        bytesPerPoll: (after.rss - before.rss) / held,
        heapPerPoll: (after.heap - before.heap) / held,
        held,
      };
    },
    { maxWait: 60_000, mode },
  );
}

/** The floor of {@link memory}: what a bare `node:http` server spends per held request. */
export const floor = () => memory({ mode: 'bare' });

async function listen(handler) {
  const server = createHttpServer(handler);
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}

async function childServer(mode) {
  const reply = (message, body) => process.send({ ...body, id: message.id });
  // The bench process went away (done, or stopped at its time limit): so does its server.
  process.once('disconnect', () => process.exit(0));
  if (mode === 'bare') {
    let holding = 0;
    const held = [];
    const server = await listen((_req, res) => {
      holding += 1;
      held.push(res);
      res.on('close', () => {
        holding -= 1;
      });
    });
    process.on('message', (message) => {
      if (message.type === 'start') return reply(message, { port: server.address().port });
      if (message.type === 'held') return reply(message, { held: holding });
      if (message.type === 'rss') {
        globalThis.gc?.();
        globalThis.gc?.();
        return reply(message, {
          rss: process.memoryUsage().rss,
          heap: process.memoryUsage().heapUsed,
        });
      }
      if (message.type === 'close') {
        server.closeAllConnections();
        server.close();
        process.disconnect();
      }
    });
    process.send({ id: 0 });
    return;
  }
  const { broker, close: closeBroker } = await makeBroker();
  const comet = createCometServer({ broker, maxWait: Number(process.env.BENCH_MAX_WAIT) });
  const server = await listen(comet.handle);
  process.on('message', async (message) => {
    switch (message.type) {
      case 'start':
        return reply(message, { port: server.address().port });
      case 'held':
        return reply(message, { held: comet.stats().waiting });
      case 'rss':
        globalThis.gc?.();
        globalThis.gc?.();
        return reply(message, {
          rss: process.memoryUsage().rss,
          heap: process.memoryUsage().heapUsed,
        });
      case 'paced': {
        let t = 0;
        let id;
        for (let index = 0; index < message.count; index += 1) {
          if (message.every > 0) await new Promise((resolve) => setTimeout(resolve, message.every));
          t = clock();
          id = await comet.publish(message.topic, { t });
        }
        // `messageId`, not `id`: `id` is the IPC reply's own.
        return reply(message, { t, messageId: id });
      }
      case 'burst': {
        const startedAt = clock();
        const publishes = [];
        for (let index = 0; index < message.count; index += 1) {
          publishes.push(comet.publish(message.topic, index));
        }
        const ids = await Promise.all(publishes);
        return reply(message, { startedAt, lastId: ids.at(-1), publishMs: clock() - startedAt });
      }
      case 'close': {
        // Bounded: a broker that cannot close (Redis gone) must not keep this process.
        const timer = setTimeout(() => process.exit(0), 2000);
        await comet.close().catch(() => {});
        await closeBroker().catch(() => {});
        server.closeAllConnections();
        server.close();
        clearTimeout(timer);
        process.disconnect();
        return;
      }
    }
  });
  process.send({ id: 0 });
}

const fmt = (value, digits = 2) =>
  value.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: 0 });

const PARTS = ['latency', 'burst', 'fanout', 'memory', 'floor'];

/**
 * Runs the figures (`only`: some of {@link PARTS}) and returns rows `{figure, value, target,
 * peer, ok}`; prints them when `print`. On Redis without `BENCH_REDIS_URL`, one throwaway
 * `redis-server` serves every part (each part's server uses its own key prefix).
 */
export async function run({ print = true, only = PARTS } = {}) {
  const kind = process.env.BENCH_BROKER ?? 'memory';
  let redis;
  if (kind === 'redis' && !process.env.BENCH_REDIS_URL) {
    redis = await startRedisServer();
    process.env.BENCH_REDIS_URL = redis.url;
  }
  const rows = [];
  try {
    if (only.includes('latency')) {
      const lat = await latency();
      rows.push({
        figure: 'latency at 50 msgs/s, p50 / p99',
        value: `${fmt(lat.p50)} / ${fmt(lat.p99)} ms`,
        target: `p99 <= ${TARGETS.latencyP99} ms`,
        peer: PEER.latency,
        ok: lat.p99 <= TARGETS.latencyP99,
        raw: lat,
      });
    }
    if (only.includes('burst')) {
      const bur = await burst();
      rows.push({
        figure: 'burst of 20 000, msgs/s',
        value: `${fmt(bur.perSecond, 0)} (${fmt(bur.ms, 0)} ms; publishing ${fmt(bur.publishMs, 0)} ms)`,
        target: `>= ${fmt(TARGETS.burst, 0)}`,
        peer: PEER.burst,
        ok: bur.perSecond >= TARGETS.burst,
        raw: bur,
      });
    }
    if (only.includes('fanout')) {
      const fan = await fanout();
      rows.push({
        figure: `fan-out to ${fan.clients} held clients, p50 / p99`,
        value: `${fmt(fan.p50)} / ${fmt(fan.p99)} ms`,
        target: `p99 <= ${TARGETS.fanoutP99} ms`,
        peer: PEER.fanout,
        ok: fan.p99 <= TARGETS.fanoutP99,
        raw: fan,
      });
    }
    if (only.includes('memory')) {
      const mem = await memory();
      rows.push({
        figure: `server RSS per held poll (${mem.held})`,
        value: `${fmt(mem.bytesPerPoll / 1000, 1)} KB (JS heap ${fmt(mem.heapPerPoll / 1000, 1)} KB)`,
        target: `<= ${TARGETS.bytesPerPoll / 1000} KB`,
        peer: PEER.memory,
        ok: mem.bytesPerPoll <= TARGETS.bytesPerPoll,
        raw: mem,
      });
    }
    if (only.includes('floor')) {
      const bare = await floor();
      rows.push({
        figure: `floor: bare node:http, RSS per held request (${bare.held})`,
        value: `${fmt(bare.bytesPerPoll / 1000, 1)} KB (JS heap ${fmt(bare.heapPerPoll / 1000, 1)} KB)`,
        target: '(reference)',
        peer: '',
        ok: true,
        raw: bare,
      });
    }
  } finally {
    await redis?.close();
  }
  if (print) {
    console.log(`\nlong-poll on loopback (broker: ${kind})`);
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

const OVERALL_MS = 150_000;

if (process.argv.includes('--child-server')) {
  await childServer(process.argv[process.argv.indexOf('--child-server') + 1]);
} else if (process.argv[1] === fileURLToPath(import.meta.url)) {
  // Every way out kills what this run started (the `exit` handler above does the killing).
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.once(signal, () => process.exit(130));
  }
  const overall = setTimeout(() => {
    console.error(`long-poll bench: over ${OVERALL_MS / 1000} s, stopping`);
    process.exit(1);
  }, OVERALL_MS);
  overall.unref();
  const only = process.env.BENCH_ONLY ? process.env.BENCH_ONLY.split(',') : PARTS;
  try {
    await run({ only });
    process.exit(0);
  } catch (error) {
    console.error(error);
    process.exit(1);
  }
}
