import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';

// The examples import the built package, as an application would.
const here = (path: string) => fileURLToPath(new URL(path, import.meta.url));
const dist = here('../../../packages/server/dist/index.js');

const children: ChildProcess[] = [];
const sockets: WebSocket[] = [];

afterEach(async () => {
  for (const ws of sockets.splice(0)) ws.terminate();
  await Promise.all(children.splice(0).map(stop));
});

/** SIGTERM (the examples drain), then waits for the exit; SIGKILL if it is still there after. */
async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  await exited;
}

/** Starts `file` on a port the OS picks; resolves with its base URL once it says it listens. */
function start(file: string): Promise<{ child: ChildProcess; base: string }> {
  const child = spawn(process.execPath, [here(`../${file}`)], {
    cwd: here('..'),
    env: { ...process.env, PORT: '0', HOST: '127.0.0.1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  return new Promise((resolve, reject) => {
    let output = '';
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      const match = /comet on http:\/\/localhost:(\d+)(\/\S*)/.exec(output);
      if (match) {
        child.stdout?.off('data', onData);
        resolve({ child, base: `http://127.0.0.1:${match[1]}${match[2]}` });
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.once('error', reject);
    child.once('exit', (code, signal) =>
      reject(new Error(`${file} exited (${code ?? signal}) before listening:\n${output}`)),
    );
  });
}

/** Opens `{base}/_ws`, polls `clock` and resolves with the first frame. */
function webSocketOpen(base: string): Promise<Record<string, unknown>> {
  const ws = new WebSocket(`${base.replace('http:', 'ws:')}/_ws`);
  sockets.push(ws);
  return new Promise((resolve, reject) => {
    ws.once('open', () =>
      ws.send(JSON.stringify({ type: 'poll', v: 1, sessionGuid: 's-ws', topics: ['clock'] })),
    );
    ws.once('message', (data) => resolve(JSON.parse(data.toString())));
    ws.once('unexpected-response', (_req, res) =>
      reject(new Error(`the upgrade was answered ${res.statusCode}: is comet.attach called?`)),
    );
    ws.once('error', reject);
  });
}

describe('examples/server', () => {
  beforeAll(() => {
    if (!existsSync(dist)) {
      throw new Error(
        'packages/server/dist is missing: the examples run on the built package; run `pnpm build` (or `pnpm --filter @cometkit/server build`) first',
      );
    }
  });

  it.each(['node-http.mjs', 'express.mjs', 'fastify.mjs'])(
    '%s answers a long-poll handshake and opens a WebSocket',
    async (file) => {
      const { child, base } = await start(file);
      const response = await fetch(base, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ v: 1, sessionGuid: 's-poll', topics: ['clock'] }),
      });
      expect(response.status).toBe(200);
      const answer = (await response.json()) as { cursors?: Record<string, string> };
      expect(Object.keys(answer.cursors ?? {})).toEqual(['clock']);

      const open = await webSocketOpen(base);
      expect(open.type).toBe('open');
      expect(Object.keys((open.cursors as Record<string, string>) ?? {})).toEqual(['clock']);

      await stop(child);
      expect(child.exitCode ?? child.signalCode).not.toBeNull();
    },
    30_000,
  );
});
