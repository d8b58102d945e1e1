/**
 * The fault run (issue 15): 3 server instances, each a child process of this file on one real
 * Redis, behind the round-robin test front with no stickiness and its faults (408s, 504s after
 * the work was done, connections reset mid-answer with half a body); 20 000 messages over 5
 * topics, half published by the instances and half sent by `@cometkit/core` clients (long-poll
 * and stream); one instance killed with SIGKILL at 25% of the load and started again a second
 * later; Redis killed and started again (no persistence: a new epoch) at 60%. Prints lost,
 * duplicated, reordered, sends unresolved, sends published twice, resets and send times.
 *
 * The run itself is `runFaultRun` of `@cometkit/test-utils` (a short one is the CI test
 * packages/redis/test/fault-run.test.ts, instances in process there).
 *
 * Run alone:   pnpm build && node bench/suites/fault-run.mjs
 * Size:        FAULT_MESSAGES (default 20 000), FAULT_RATE (default 0.02), FAULT_SEED (1)
 * Bounds:      the run stops at 270 s whatever happens (bench/run.mjs allows a suite 300 s); every child and redis-server is killed
 *              on every exit path.
 */
import { fork, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const name = 'fault-run';

const TIME_LIMIT_MS = 270_000;
const ADMIN_PUBLISH = '/_bench/publish';

/** Every process this run started: killed on any exit. */
const children = new Set();
function track(child) {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}
process.on('exit', () => {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
});

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

function killed(proc) {
  return new Promise((resolve) => {
    if (proc.exitCode !== null || proc.signalCode !== null) return resolve();
    proc.once('exit', () => resolve());
    proc.kill('SIGKILL');
  });
}

/** A `redis-server` on a fixed free port, no persistence; `restart()` loses everything. */
async function startRedis() {
  const dir = mkdtempSync(join(tmpdir(), 'cometkit-fault-redis-'));
  const port = await freePort();
  let proc;
  const start = () =>
    new Promise((resolve, reject) => {
      proc = track(
        spawn(
          process.env.REDIS_SERVER ?? 'redis-server',
          ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
          { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] },
        ),
      );
      let output = '';
      const timer = setTimeout(() => reject(new Error(`redis-server: ${output}`)), 10_000);
      const onData = (chunk) => {
        output += chunk;
        if (output.includes('Ready to accept connections')) {
          clearTimeout(timer);
          proc.stdout.off('data', onData);
          proc.stdout.resume();
          resolve();
        }
      };
      proc.stdout.on('data', onData);
      proc.stderr.resume();
      proc.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`redis-server exited with ${code}: ${output.slice(-300)}`));
      });
    });
  await start();
  return {
    url: `redis://127.0.0.1:${port}`,
    async restart() {
      await killed(proc);
      await start();
    },
    async close() {
      await killed(proc);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Starts instance `slot` as a child process on `port`; resolves once it listens. */
async function startInstance(redisUrl, keyPrefix, port) {
  const child = track(
    fork(fileURLToPath(import.meta.url), ['--child-instance', redisUrl, keyPrefix, String(port)], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    }),
  );
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('instance did not start in 10 s')), 10_000);
    child.once('message', () => {
      clearTimeout(timer);
      resolve();
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`instance exited with ${code}`));
    });
  });
  const url = `http://127.0.0.1:${port}`;
  return {
    url,
    port,
    async publish(topic, data) {
      const response = await fetch(`${url}${ADMIN_PUBLISH}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ topic, data }),
      });
      const body = await response.json();
      if (response.status !== 200) throw new Error(`publish: ${response.status}`);
      return body.id;
    },
    kill: () => killed(child),
  };
}

/** The child: one server instance on Redis, with a publish route for the run's publishers. */
async function childInstance(redisUrl, keyPrefix, port) {
  const { createCometServer } = await import('@cometkit/server');
  const { createRedisBroker } = await import('@cometkit/redis');
  // History covers the whole run, so only the Redis restart can reset a client.
  const broker = createRedisBroker({ redis: redisUrl, keyPrefix, maxLength: 50_000 });
  const comet = createCometServer({ broker, maxWait: 5000, coalesceMs: 5 });
  const server = createHttpServer((req, res) => {
    if (req.url !== ADMIN_PUBLISH) return comet.handle(req, res);
    let body = '';
    req.on('data', (chunk) => {
      body += chunk;
    });
    req.on('end', () => {
      const { topic, data } = JSON.parse(body);
      comet.publish(topic, data).then(
        (id) => {
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ id }));
        },
        (error) => {
          res.writeHead(503, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ error: String(error?.message ?? error) }));
        },
      );
    });
  });
  server.listen(port, '127.0.0.1', () => process.send?.('ready'));
  // The parent going away takes this instance with it.
  process.on('disconnect', () => process.exit(0));
}

/** Runs the fault run and prints its figures; resolves with the report. */
export async function run({ print = true } = {}) {
  const { runFaultRun, formatFaultRunReport } = await import('@cometkit/test-utils');
  const { createCometClient } = await import('@cometkit/core');
  const redis = await startRedis();
  const keyPrefix = `fault:${process.pid}:`;
  const ports = [];
  try {
    const report = await runFaultRun({
      createClient: createCometClient,
      startInstance: async (slot, port) => {
        ports[slot] = port ?? ports[slot] ?? (await freePort());
        return startInstance(redis.url, keyPrefix, ports[slot]);
      },
      restartRedis: () => redis.restart(),
      messages: Number(process.env.FAULT_MESSAGES ?? 20_000),
      faultRate: Number(process.env.FAULT_RATE ?? 0.02),
      seed: Number(process.env.FAULT_SEED ?? 1),
      timeLimitMs: TIME_LIMIT_MS,
      log: print ? (line) => console.log(`  ${line}`) : undefined,
    });
    if (print) {
      console.log(
        '3 instances (child processes) on Redis, round-robin front with faults, 5 topics, 3 long-poll + 3 stream clients',
      );
      console.log(formatFaultRunReport(report));
    }
    return report;
  } finally {
    await redis.close();
  }
}

if (process.argv.includes('--child-instance')) {
  const at = process.argv.indexOf('--child-instance');
  const [redisUrl, keyPrefix, port] = process.argv.slice(at + 1, at + 4);
  await childInstance(redisUrl, keyPrefix, Number(port));
} else if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const report = await run();
  const ok =
    report.lost === 0 &&
    report.duplicated === 0 &&
    report.reordered === 0 &&
    report.sendsUnresolved === 0 &&
    report.sendsPublishedTwice === 0 &&
    report.caughtUp;
  if (!ok) console.log('fault run: a target was missed (see above)');
  // Children and sockets are gone; exit rather than wait on a stray timer.
  process.exit(0);
}
