/**
 * Long-poll on loopback: the server's figures against the targets of issue 3.
 *
 * Run alone:   pnpm --filter @cometkit/server build && node --expose-gc bench/suites/long-poll.mjs
 * Or with the rest: `pnpm bench` (bench/run.mjs imports `run` from here).
 * Broker:      BENCH_BROKER=memory (default) | redis. Redis: BENCH_REDIS_URL, or a throwaway
 *              `redis-server` is started (free port, no persistence) and killed at the end.
 *              The Redis broker needs a build: pnpm --filter @cometkit/redis build
 * Profile:     BENCH_CPU_PROF=1 writes the server process's CPU profiles to /tmp/lp-prof;
 *              BENCH_HEAP_SNAPSHOT=dir writes a heap snapshot of the server at the memory
 *              figure's last step (comet and bare: compare them with DevTools' Comparison view);
 *              BENCH_TRACE_GC=1 runs the server with --trace-gc
 * Flags:       BENCH_SERVER_FLAGS='--max-semi-space-size=1' runs the server process with those
 *              Node flags (the environment, MALLOC_ARENA_MAX included, is passed through)
 * Metrics:     BENCH_METRICS=1 gives the server Prometheus metrics (`createCometMetrics()`), to
 *              measure their overhead against a run without
 * Parts:       `latency`, `burst`, `fanout`, `memory`, `floor` are exported to run one alone;
 *              BENCH_ONLY=burst,fanout runs some from the command line.
 * Trials:      latency, burst and fan-out run BENCH_TRIALS times (default 5), each on a fresh
 *              server; the median run is printed, then every run's figure.
 * Warm-up:     each of those first runs its load unmeasured (50 latency messages, a 20 000
 *              burst on another topic, 3 fan-out rounds): the figures are a warm server's;
 *              the warm-up's own figures are printed under the table as the cold ones.
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
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { createServer as createNetServer, connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeHeapSnapshot } from 'node:v8';
import { createCometMetrics, createCometServer, createMemoryBroker } from '@cometkit/server';

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
      // BENCH_REDIS_PREFIX: instances that share topics (bench/suites/redis-scale.mjs).
      keyPrefix: process.env.BENCH_REDIS_PREFIX ?? `bench:${process.pid}:${Date.now()}:`,
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

export const percentile = (sorted, p) =>
  sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];

function deadline(ms, what) {
  let timer;
  const promise = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took more than ${ms} ms`)), ms);
  });
  return { promise, clear: () => clearTimeout(timer) };
}

/** A bounded wait for `done()`, or throws. */
export async function within(ms, what, done) {
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
export function rawClient(port, path = '/api/comet') {
  sessions += 1;
  const session = `"sessionGuid":"bench-${sessions}"`;
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
    post(body) {
      // Each raw client is its own session: the server caps the polls held per session.
      const text = body.replace(SESSION, session);
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

let sessions = 0;
const SESSION = '"sessionGuid":"bench"';

export function poll(topic, cursors, wait) {
  return JSON.stringify({ v: 1, sessionGuid: 'bench', topics: [topic], cursors, wait });
}

/** The cursor of `topic` in an answer, found without parsing the whole body. */
export function cursorOf(body, topic) {
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
export async function withServer(fn, { maxWait, mode = 'comet' } = {}) {
  const child = track(
    fork(fileURLToPath(import.meta.url), ['--child-server', mode], {
      execArgv: [
        '--expose-gc',
        ...(process.env.BENCH_CPU_PROF ? ['--cpu-prof', '--cpu-prof-dir=/tmp/lp-prof'] : []),
        ...(process.env.BENCH_TRACE_GC ? ['--trace-gc'] : []),
        ...(process.env.BENCH_SERVER_FLAGS ? process.env.BENCH_SERVER_FLAGS.split(/\s+/) : []),
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

export async function untilHeld(ask, count, what, ms = 20_000) {
  await within(ms, what, async () => {
    while ((await ask({ type: 'held' })).held < count) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  });
}

export async function connected(count, port, path) {
  const list = Array.from({ length: count }, () => rawClient(port, path));
  await within(20_000, `${count} connections`, () => Promise.all(list.map((c) => c.ready)));
  return list;
}

/**
 * Each timed part first runs its own load once or a few times, not counted (a warm-up), so
 * the figures are those of a server whose hot path V8 has already optimized, as in production:
 * in a cold process the first rounds of a fan-out answer at half the speed of the later ones.
 */
const WARM_LATENCY_MESSAGES = 50;
const WARM_FANOUT_ROUNDS = 3;

/**
 * One client, a message every 20 ms (250 of them, after {@link WARM_LATENCY_MESSAGES} not
 * counted): publish (server clock, just before `publish`) to the first byte of the answer
 * carrying it.
 */
export async function latency() {
  return withServer(async ({ port, ask }) => {
    const count = 250; // 5 s at 50 msgs/s
    const warm = WARM_LATENCY_MESSAGES;
    const samples = [];
    const [client] = await connected(1, port);
    let stopped = false;
    const loop = (async () => {
      let cursor = cursorOf((await client.post(poll('lat'))).body, 'lat');
      while (!stopped && samples.length < warm + count) {
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
      await ask({ type: 'paced', topic: 'lat', count: warm + count, every: 20 }, 20_000);
      await within(10_000, 'the last latency message', () => loop);
    } finally {
      stopped = true;
      client.close();
    }
    const counted = samples.slice(warm).sort((a, b) => a - b);
    const cold = samples.slice(0, warm).sort((a, b) => a - b);
    return {
      p50: percentile(counted, 50),
      p99: percentile(counted, 99),
      count,
      coldP99: percentile(cold, 99),
    };
  });
}

/**
 * 20 000 messages published at once (all started in one turn; the Redis broker pipelines
 * them), one client polling with the server's batch limit (1 000): from the first publish
 * to the first byte of the answer that carries the last message. One burst on another topic
 * (another client) comes first, not counted.
 */
export async function burst() {
  return withServer(async ({ port, ask }) => {
    const cold = await burstOnce(port, ask, 'burst-warm');
    return { ...(await burstOnce(port, ask, 'burst')), coldPerSecond: cold.perSecond };
  });
}

/** One measured burst on `topic` with its own client (see {@link burst}). */
async function burstOnce(port, ask, topic) {
  const total = 20_000;
  const [client] = await connected(1, port);
  let last;
  let lastAt = 0;
  let stopped = false;
  const seen = new Map();
  const loop = (async () => {
    let cursor = cursorOf((await client.post(poll(topic))).body, topic);
    while (!stopped) {
      const answer = await client.post(poll(topic, { [topic]: cursor }, 20_000));
      cursor = cursorOf(answer.body, topic);
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
    const reply = await ask({ type: 'burst', topic, count: total }, 30_000);
    last = reply.lastId;
    if (seen.has(last)) lastAt = seen.get(last);
    else await within(30_000, 'the burst to arrive', () => loop);
    const seconds = (lastAt - reply.startedAt) / 1000;
    return { perSecond: total / seconds, ms: seconds * 1000, publishMs: reply.publishMs };
  } finally {
    stopped = true;
    client.close();
  }
}

/**
 * 1 000 held clients (1 000 sockets), one message, 5 rounds after
 * {@link WARM_FANOUT_ROUNDS} not counted: from the publish to the first byte of each
 * client's answer. Nothing is parsed: the next cursor is the published id. `clients` and
 * `rounds` change the load (bench/suites/scale.mjs holds 10 000); the server's RSS and heap are
 * read while the last round's polls are held (`measure`: after two full GCs), and its CPU time
 * over the counted rounds.
 */
export async function fanout({ clients = 1000, rounds = 5, warm = WARM_FANOUT_ROUNDS } = {}) {
  const limit = Math.max(20_000, clients * 4);
  return withServer(async ({ port, ask }) => {
    const samples = [];
    const coldSamples = [];
    const idle = await ask({ type: 'rss' });
    const list = [];
    const connectStart = performance.now();
    for (let from = 0; from < clients; from += CONNECT_CHUNK) {
      list.push(...(await connected(Math.min(CONNECT_CHUNK, clients - from), port)));
    }
    const connectMs = performance.now() - connectStart;
    let held;
    let cpuMs = 0;
    try {
      const first = await within(limit, 'the handshakes', () =>
        Promise.all(list.map((client) => client.post(poll('fan')))),
      );
      let cursor = cursorOf(first[0].body, 'fan');
      for (let round = 1 - warm; round <= rounds; round += 1) {
        const answers = list.map((client) => client.post(poll('fan', { fan: cursor }, 20_000)));
        await untilHeld(ask, clients, `${clients} clients to be held`, limit);
        if (round === rounds) held = await ask({ type: 'rss' });
        const before = await ask({ type: 'cpu' });
        const { t, messageId: id } = await ask({ type: 'paced', topic: 'fan', count: 1, every: 0 });
        const got = await within(limit, 'the fan-out', () => Promise.all(answers));
        if (round >= 1) cpuMs += (await ask({ type: 'cpu' })).ms - before.ms;
        for (const answer of got) {
          (round >= 1 ? samples : coldSamples).push(answer.at - t);
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
    coldSamples.sort((a, b) => a - b);
    return {
      p50: percentile(samples, 50),
      p99: percentile(samples, 99),
      max: samples.at(-1),
      clients,
      rounds,
      coldP99: percentile(coldSamples, 99),
      connectMs,
      cpuMsPerRound: cpuMs / rounds,
      rssMB: held.rss / 2 ** 20,
      heapMB: held.heap / 2 ** 20,
      rssIdleMB: idle.rss / 2 ** 20,
    };
  });
}

/** How many polls the memory figure holds at each step (cumulative, in one server process). */
const MEMORY_STEPS = [2000, 4000, 8000, 12_000, 16_000];
/**
 * The slope is fitted from this step up. Below it the RSS still grows by V8's young generation
 * (two 16 MB semi-spaces) being written through for the first time: 12-14 KB per poll from
 * 1 000 to 4 000 where the JS heap grows by 5 KB, in both servers alike (measured, see
 * docs/decisions.md); from here on the steps agree with each other.
 */
const MEMORY_FIT_FROM = 4000;
/** The step whose plain "growth over baseline / N" is printed too (the figure used before). */
const MEMORY_OLD_STEP = 2000;
/** Warm-up requests before the baseline, over this many keep-alive connections. */
const WARM_REQUESTS = 20_000;
const WARM_CLIENTS = 20;
/** Connections opened at once: stays well under the listen backlog (511) and SYN queue. */
export const CONNECT_CHUNK = 500;

/**
 * The soft limit on open files of this process (Linux `/proc/self/limits`), or undefined where
 * it cannot be read. Node cannot raise it; the server child inherits the same limit.
 */
function openFileLimit() {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('Max open files'));
    const soft = line?.split(/\s{2,}/)[1];
    return soft === undefined || soft === 'unlimited' ? undefined : Number(soft);
  } catch {
    return undefined;
  }
}

/**
 * The steps that fit the file descriptor limit: each held poll is one socket in the bench and
 * one in the server, plus some headroom for what else the processes have open.
 */
export function memorySteps(steps = MEMORY_STEPS, limit = openFileLimit()) {
  if (limit === undefined) return steps;
  const fit = steps.filter((n) => n + 256 <= limit);
  if (fit.filter((n) => n >= MEMORY_FIT_FROM).length < 2) {
    throw new Error(
      `the open file limit (${limit}) is too low for the memory figure: raise it (ulimit -n ${steps.at(-1) + 256})`,
    );
  }
  return fit;
}

/** Least-squares line through `points` ({x, y}): `{slope, intercept}`. */
export function fitLine(points) {
  const n = points.length;
  const mx = points.reduce((s, p) => s + p.x, 0) / n;
  const my = points.reduce((s, p) => s + p.y, 0) / n;
  let sxy = 0;
  let sxx = 0;
  for (const p of points) {
    sxy += (p.x - mx) * (p.y - my);
    sxx += (p.x - mx) ** 2;
  }
  const slope = sxy / sxx;
  return { slope, intercept: my - slope * mx };
}

/**
 * Server memory per held poll, as a marginal cost. One server process holds 2 000, then
 * 4 000, 8 000, 12 000 and 16 000 polls (each on its own keep-alive socket; the earlier ones
 * stay held), and its RSS and JS heap are read after two GCs at every step. The figure is the
 * slope of the least-squares line through the readings from {@link MEMORY_FIT_FROM} up: what
 * one more held poll costs. The line's value at 0 minus the idle baseline is the fixed part:
 * one-off growth (V8's young generation, heap pages, malloc arenas) that does not grow with N.
 * The baseline is taken after 20 000 requests answered at once, so it is a server that has
 * served traffic. The old figure, RSS growth at 2 000 over the baseline divided by 2 000,
 * mixes both parts, so it is printed too. `mode: 'bare'` measures the floor the same way: a
 * `node:http` server that only holds requests (no body read, no answer; it answers the
 * warm-up requests). The server runs with Node's default heap settings (`--expose-gc` only
 * lets it collect before each reading). Steps that need more sockets than the open file limit
 * allows are left out.
 */
export async function memory({ mode = 'comet', steps = memorySteps() } = {}) {
  return withServer(
    async ({ port, ask }) => {
      // Real traffic first, the same for both servers: requests answered at once (comet: a
      // handshake; bare: an empty JSON answer), enough that V8's young generation has grown to
      // its full size and been written through before the baseline.
      const warm = await connected(WARM_CLIENTS, port, mode === 'comet' ? '/api/comet' : '/warm');
      await within(30_000, 'the warm-up requests', () =>
        Promise.all(
          warm.map(async (client) => {
            for (let index = 0; index < WARM_REQUESTS / WARM_CLIENTS; index += 1) {
              await client.post(poll('mem', {}, 0));
            }
          }),
        ),
      );
      for (const client of warm) client.close();
      const base = await ask({ type: 'rss' });
      const list = [];
      const pending = [];
      const points = [];
      let cursors;
      try {
        for (const held of steps) {
          while (list.length < held) {
            const more = await connected(Math.min(CONNECT_CHUNK, held - list.length), port);
            if (cursors === undefined) {
              cursors =
                mode === 'comet'
                  ? { mem: cursorOf((await more[0].post(poll('mem'))).body, 'mem') }
                  : {};
            }
            for (const client of more) {
              pending.push(client.post(poll('mem', cursors, 60_000)).catch(() => {}));
            }
            list.push(...more);
          }
          await untilHeld(ask, held, `${held} polls to be held`);
          points.push({ held, ...(await ask({ type: 'rss' })) });
          if (process.env.BENCH_HEAP_SNAPSHOT && held === steps.at(-1)) {
            await ask({ type: 'snapshot', dir: process.env.BENCH_HEAP_SNAPSHOT, mode }, 120_000);
          }
        }
      } finally {
        for (const client of list) client.close();
      }
      await within(10_000, 'the held polls to end', () => Promise.all(pending));
      const fitted = points.filter((p) => p.held >= MEMORY_FIT_FROM);
      const rss = fitLine(fitted.map((p) => ({ x: p.held, y: p.rss })));
      const heap = fitLine(fitted.map((p) => ({ x: p.held, y: p.heap })));
      const old = points.find((p) => p.held === MEMORY_OLD_STEP);
      return {
        bytesPerPoll: rss.slope,
        heapPerPoll: heap.slope,
        fixedRss: rss.intercept - base.rss,
        fixedHeap: heap.intercept - base.heap,
        oldBytesPerPoll: old ? (old.rss - base.rss) / old.held : undefined,
        oldHeapPerPoll: old ? (old.heap - base.heap) / old.held : undefined,
        steps: points.map((p) => ({
          held: p.held,
          rss: p.rss - base.rss,
          heap: p.heap - base.heap,
        })),
        base,
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

/**
 * V8 hands the pages a full GC freed back to the system on a background thread, just after the
 * GC: an RSS read at once still counts them. With 10 000 held polls after a fan-out round that
 * was 15 to 35 MB, gone 100 ms later and not coming back (bench/PEERS.md, 10 000 held).
 */
const MEASURE_SETTLE_MS = 200;

/**
 * The server process's memory after two full GCs (the second collects what the first freed),
 * read {@link MEASURE_SETTLE_MS} later.
 */
async function measure() {
  globalThis.gc?.();
  globalThis.gc?.();
  await new Promise((resolve) => setTimeout(resolve, MEASURE_SETTLE_MS));
  const usage = process.memoryUsage();
  return { rss: usage.rss, heap: usage.heapUsed };
}

/** Writes a heap snapshot of the server process (BENCH_HEAP_SNAPSHOT=dir, memory figures). */
function snapshot({ dir, mode }) {
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${mode}-${process.pid}.heapsnapshot`);
  writeHeapSnapshot(file);
  return file;
}

async function childServer(mode) {
  const reply = (message, body) => process.send({ ...body, id: message.id });
  // The bench process went away (done, or stopped at its time limit): so does its server.
  process.once('disconnect', () => process.exit(0));
  if (mode === 'bare') {
    let holding = 0;
    const held = [];
    const server = await listen((req, res) => {
      if (req.url === '/warm') {
        req.resume();
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': '2' });
        res.end('{}');
        return;
      }
      holding += 1;
      held.push(res);
      res.on('close', () => {
        holding -= 1;
      });
    });
    process.on('message', (message) => {
      if (message.type === 'start') return reply(message, { port: server.address().port });
      if (message.type === 'held') return reply(message, { held: holding });
      if (message.type === 'rss') return measure().then((figures) => reply(message, figures));
      if (message.type === 'snapshot') return reply(message, { file: snapshot(message) });
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
  const comet = createCometServer({
    broker,
    maxWait: Number(process.env.BENCH_MAX_WAIT),
    ...(process.env.BENCH_METRICS === '1' ? { metrics: createCometMetrics() } : {}),
  });
  const server = await listen(comet.handle);
  process.on('message', async (message) => {
    switch (message.type) {
      case 'start':
        return reply(message, { port: server.address().port });
      case 'held':
        return reply(message, { held: comet.stats().waiting });
      case 'rss':
        return reply(message, await measure());
      case 'cpu': {
        const { user, system } = process.cpuUsage();
        return reply(message, { ms: (user + system) / 1000 });
      }
      case 'snapshot':
        return reply(message, { file: snapshot(message) });
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

const kb = (bytes) => `${fmt(bytes / 1000, 1)} KB`;
const mb = (bytes) => `${fmt(bytes / 1e6, 1)} MB`;
const rangeOf = (mem) => {
  const fitted = mem.steps.filter((step) => step.held >= MEMORY_FIT_FROM);
  return `${fmt(fitted[0].held, 0)}-${fmt(fitted.at(-1).held, 0)}`;
};

/** The row's value: the marginal cost per held poll (RSS, JS heap). */
function memoryValue(mem) {
  return `${kb(mem.bytesPerPoll)} RSS (JS heap ${kb(mem.heapPerPoll)})`;
}

/** The fixed part, the old figure, and every reading, printed under the table. */
function memoryDetail(mem) {
  const readings = mem.steps
    .map((s) => `${fmt(s.held, 0)}: +${mb(s.rss)} RSS, +${mb(s.heap)} heap`)
    .join('; ');
  const old =
    mem.oldBytesPerPoll === undefined
      ? ''
      : `; old figure (growth at ${fmt(MEMORY_OLD_STEP, 0)} / ${fmt(MEMORY_OLD_STEP, 0)}): ${kb(mem.oldBytesPerPoll)} RSS (heap ${kb(mem.oldHeapPerPoll)})`;
  return `fixed part ${mb(mem.fixedRss)} RSS, ${mb(mem.fixedHeap)} heap${old}\n  over the idle baseline (${mb(mem.base.rss)} RSS): ${readings}`;
}

const PARTS = ['latency', 'burst', 'fanout', 'memory', 'floor'];

/**
 * Runs the figures (`only`: some of {@link PARTS}) and returns rows `{figure, value, target,
 * peer, ok}`; prints them when `print`. On Redis without `BENCH_REDIS_URL`, one throwaway
 * `redis-server` serves every part (each part's server uses its own key prefix).
 */
/**
 * Timed parts run this many times, each against a fresh server process; the printed figure is
 * the median run (by the figure its target is on) and every run's figure follows it, since on a
 * shared machine a single run of a tail or a throughput moves by tens of percent.
 */
const TRIALS = Math.max(1, Number(process.env.BENCH_TRIALS ?? 5));

/** Runs `part` {@link TRIALS} times: the run with the median `key`, and every run's `key`. */
async function trials(part, key) {
  const results = [];
  for (let index = 0; index < TRIALS; index += 1) results.push(await part());
  const sorted = [...results].sort((a, b) => a[key] - b[key]);
  return { ...sorted[Math.floor((sorted.length - 1) / 2)], runs: results.map((r) => r[key]) };
}

const runsOf = (result, digits = 2) =>
  result.runs.length > 1
    ? ` [${result.runs.length} runs: ${result.runs.map((v) => fmt(v, digits)).join(', ')}]`
    : '';

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
      const lat = await trials(latency, 'p99');
      rows.push({
        figure: 'latency at 50 msgs/s, p50 / p99',
        value: `${fmt(lat.p50)} / ${fmt(lat.p99)} ms${runsOf(lat)}`,
        target: `p99 <= ${TARGETS.latencyP99} ms`,
        peer: PEER.latency,
        ok: lat.p99 <= TARGETS.latencyP99,
        raw: lat,
      });
    }
    if (only.includes('burst')) {
      const bur = await trials(burst, 'perSecond');
      rows.push({
        figure: 'burst of 20 000, msgs/s',
        value: `${fmt(bur.perSecond, 0)} (${fmt(bur.ms, 0)} ms; publishing ${fmt(bur.publishMs, 0)} ms)${runsOf(bur, 0)}`,
        target: `>= ${fmt(TARGETS.burst, 0)}`,
        peer: PEER.burst,
        ok: bur.perSecond >= TARGETS.burst,
        raw: bur,
      });
    }
    if (only.includes('fanout')) {
      const fan = await trials(fanout, 'p99');
      rows.push({
        figure: `fan-out to ${fan.clients} held clients, p50 / p99`,
        value: `${fmt(fan.p50)} / ${fmt(fan.p99)} ms${runsOf(fan)}`,
        target: `p99 <= ${TARGETS.fanoutP99} ms`,
        peer: PEER.fanout,
        ok: fan.p99 <= TARGETS.fanoutP99,
        raw: fan,
      });
    }
    if (only.includes('memory')) {
      const mem = await memory();
      rows.push({
        figure: `server memory per held poll (slope over ${rangeOf(mem)} held)`,
        value: memoryValue(mem),
        target: `RSS <= ${TARGETS.bytesPerPoll / 1000} KB`,
        peer: PEER.memory,
        ok: mem.bytesPerPoll <= TARGETS.bytesPerPoll,
        raw: mem,
      });
    }
    if (only.includes('floor')) {
      const bare = await floor();
      rows.push({
        figure: `floor: bare node:http per held request (slope over ${rangeOf(bare)})`,
        value: memoryValue(bare),
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
    const metrics = process.env.BENCH_METRICS === '1' ? 'on' : 'off';
    console.log(`\nlong-poll on loopback (broker: ${kind}, metrics: ${metrics})`);
    console.table(
      rows.map((row) => ({
        figure: row.figure,
        value: row.value,
        target: row.target,
        SockJS: row.peer,
        '': row.ok ? 'ok' : 'MISSED',
      })),
    );
    const cold = [];
    for (const row of rows) {
      if (row.raw.coldP99 !== undefined)
        cold.push(`${row.figure.split(',')[0]} p99 ${fmt(row.raw.coldP99)} ms`);
      if (row.raw.coldPerSecond !== undefined)
        cold.push(`burst ${fmt(row.raw.coldPerSecond, 0)} msgs/s`);
    }
    if (cold.length > 0) {
      console.log(`warm-up, not counted (a cold server, median run): ${cold.join('; ')}`);
    }
    for (const row of rows) {
      if (!row.raw.steps) continue;
      console.log(`${row.figure}:`);
      console.log(`  ${memoryDetail(row.raw)}`);
    }
  }
  return rows;
}

const OVERALL_MS = 240_000;

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
