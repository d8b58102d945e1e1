/**
 * Starts a real `redis-server` for the tests: a free loopback port, no persistence, a temp dir.
 * Without `redis-server` the Redis tests are skipped locally with a message, and fail in CI.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const binary = process.env.REDIS_SERVER ?? 'redis-server';

/** True when `redis-server` can be run here. */
export const redisAvailable = spawnSync(binary, ['--version'], { stdio: 'ignore' }).status === 0;

if (!redisAvailable) {
  const message = `redis-server not found (${binary}): install it (apt-get install redis-server) or set REDIS_SERVER`;
  if (process.env.CI) throw new Error(`${message}; the Redis tests must run in CI`);
  console.warn(`@cometkit/redis tests skipped: ${message}`);
}

/** A running test Redis. */
export interface TestRedis {
  readonly port: number;
  readonly url: string;
  /** Kills the process like a crash (no save: everything in memory is lost). */
  stop(): Promise<void>;
  /** Stops it for good and removes its temp dir: for `afterAll`. */
  close(): Promise<void>;
  /** Starts it again on the same port; empty unless `persistence` was on. */
  start(): Promise<void>;
  /** Stops and starts again. */
  restart(): Promise<void>;
}

/** Options of {@link startRedis}. */
export interface StartRedisOptions {
  /** Extra `redis-server` arguments, e.g. `['--stream-node-max-entries', '4']`. */
  args?: string[];
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

const STARTUP_TIMEOUT_MS = 10_000;

/** Starts a `redis-server`; call `close()` in `afterAll`. */
export async function startRedis(options: StartRedisOptions = {}): Promise<TestRedis> {
  const dir = mkdtempSync(join(tmpdir(), 'cometkit-redis-'));
  let port = await freePort();
  let child: ChildProcess | undefined;

  const start = () =>
    new Promise<void>((resolve, reject) => {
      const args = [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        '--appendonly',
        'no',
        '--dir',
        dir,
        '--logfile',
        '',
        ...(options.args ?? []),
      ];
      const proc = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
      child = proc;
      let output = '';
      const timer = setTimeout(() => {
        proc.kill('SIGKILL');
        reject(new Error(`redis-server did not start within ${STARTUP_TIMEOUT_MS} ms:\n${output}`));
      }, STARTUP_TIMEOUT_MS);
      const onData = (chunk: Buffer) => {
        output += chunk.toString();
        if (output.includes('Ready to accept connections')) {
          clearTimeout(timer);
          proc.stdout?.off('data', onData);
          proc.stdout?.resume();
          resolve();
        }
      };
      proc.stdout?.on('data', onData);
      proc.stderr?.on('data', (chunk: Buffer) => {
        output += chunk.toString();
      });
      proc.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`redis-server exited with ${code}:\n${output}`));
      });
    });

  const stop = async () => {
    const proc = child;
    child = undefined;
    if (!proc || proc.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      proc.once('exit', () => resolve());
      // SIGKILL: an abrupt loss, like a crash; nothing is saved either way (--save '').
      proc.kill('SIGKILL');
    });
  };

  // The free port may be taken between finding it and Redis binding it: try a few.
  for (let attempt = 1; ; attempt += 1) {
    try {
      await start();
      break;
    } catch (error) {
      if (attempt === 3) {
        rmSync(dir, { recursive: true, force: true });
        throw error;
      }
      port = await freePort();
    }
  }
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    start,
    async stop() {
      await stop();
    },
    async restart() {
      await stop();
      await start();
    },
    async close() {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
