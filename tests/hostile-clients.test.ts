/**
 * Hostile clients all at once against one built @cometkit/server in a process of its own whose
 * heap is capped (the cap is real: past it, the process dies): WebSockets flooding bad frames
 * and pings without reading, one flooding sends with a slow `onSend` and repeating a pending id,
 * poisoned sends nested 5 000 deep, and polls asking for a history of 12 MB at once, while an
 * honest client (the real @cometkit/core) sends and receives. Needs
 * `pnpm --filter @cometkit/server build` (`pnpm test` builds first). The cap and what the
 * server is held to are documented in docs/deploy/limits.md.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { type CometClient, createCometClient } from '@cometkit/core';
import { floodFrames, maskedTextFrame, openRawWebSocket } from '@cometkit/test-utils';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { WebSocket } from 'ws';

/** The server's heap cap, in MB: the floods below, unbounded, take it past 600 MB. */
const HEAP_CAP_MB = 128;
const dist = fileURLToPath(new URL('../packages/server/dist/index.js', import.meta.url));
const childScript = fileURLToPath(new URL('./hostile/server-child.mjs', import.meta.url));

interface Report {
  heap: number;
  peak: number;
  onSendMax: number;
  stats: { sockets: number; held: number };
}

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0).reverse()) cleanup();
});

async function startChild(options: Record<string, unknown>) {
  const child: ChildProcess = spawn(
    process.execPath,
    ['--expose-gc', `--max-old-space-size=${HEAP_CAP_MB}`, childScript, dist],
    {
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      env: { ...process.env, COMET_OPTIONS: JSON.stringify(options) },
    },
  );
  cleanups.push(() => child.kill('SIGKILL'));
  let exit: { code: number | null; signal: string | null } | undefined;
  let stderr = '';
  child.stderr?.on('data', (chunk) => {
    stderr += chunk;
  });
  child.on('exit', (code, signal) => {
    exit = { code, signal };
  });
  const [port, position] = await new Promise<[number, string]>((resolve, reject) => {
    child.stdout?.on('data', (chunk: Buffer) => {
      const match = /port (\d+) (\S*)/.exec(String(chunk));
      if (match) resolve([Number(match[1]), match[2] ?? '']);
    });
    child.once('exit', () => reject(new Error(`the server exited: ${stderr}`)));
  });
  const report = () =>
    new Promise<Report>((resolve, reject) => {
      if (exit) return reject(new Error(`the server died (${JSON.stringify(exit)}): ${stderr}`));
      child.once('message', (message) => resolve(message as Report));
      child.send('heap');
    });
  return { port, position, report, died: () => exit };
}

describe('hostile clients against one server with a heap cap', () => {
  it('survives the floods under its cap, closes them, and loses nothing for an honest client', async () => {
    expect(existsSync(dist), 'build the server first: pnpm --filter @cometkit/server build').toBe(
      true,
    );
    const server = await startChild({
      slowOnSend: 500,
      slowOnSendPrefix: 'slow',
      prefill: { topic: 'big', count: 200, size: 60_000 },
      // The whole 12 MB stays in history: the polls below ask for all of it.
      memoryBroker: { historyMaxBytes: 32 * 1_048_576 },
    });
    const base = `http://127.0.0.1:${server.port}/api/comet`;
    const baseline = (await server.report()).heap;

    // The honest client: subscribes, then sends 30 messages while the floods run.
    const honest: CometClient = createCometClient({ url: base, wait: 5000 });
    cleanups.push(() => honest.close());
    const got: unknown[] = [];
    honest.subscribe('honest', (data) => got.push(data));
    await vi.waitFor(() => expect(honest.getState().status).toBe('connected'), {
      timeout: 10_000,
    });

    // 1. Bad frames and pings from sockets that never read (7 MB and 6 MB).
    const bad = await openRawWebSocket(server.port, '/api/comet/_ws');
    const pings = await openRawWebSocket(server.port, '/api/comet/_ws');
    cleanups.push(
      () => bad.socket.destroy(),
      () => pings.socket.destroy(),
    );
    const floods = [
      floodFrames(bad, maskedTextFrame('x'), 1_000_000),
      floodFrames(pings, maskedTextFrame('{"type":"ping"}'), 300_000),
    ];

    // 5. One socket: 3 000 sends to a slow onSend, then 2 000 repeating one pending id.
    const sender = new WebSocket(`${base.replace('http', 'ws')}/_ws`);
    cleanups.push(() => sender.terminate());
    await new Promise((resolve) => sender.once('open', resolve));
    sender.on('message', () => {});
    for (let index = 0; index < 3000; index += 1) {
      sender.send(JSON.stringify({ type: 'send', topic: 'slow', id: `u${index}`, data: index }));
    }
    for (let index = 0; index < 2000; index += 1) {
      sender.send(JSON.stringify({ type: 'send', topic: 'slow', id: 'same', data: index }));
    }

    // 2. Poisoned sends, 5 000 levels deep.
    const poison = `{"v":1,"sessionGuid":"p","id":"p","data":${'['.repeat(5000)}${']'.repeat(5000)}}`;
    const poisoned = Promise.all(
      Array.from({ length: 20 }, () =>
        fetch(`${base}/honest`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: poison,
        }).then((response) => response.status),
      ),
    );

    // 3. Polls for the whole 12 MB history at once, four at a time, five rounds.
    const sizes: number[] = [];
    const bigPolls = (async () => {
      for (let round = 0; round < 5; round += 1) {
        await Promise.all(
          Array.from({ length: 4 }, async (_, index) => {
            const response = await fetch(base, {
              method: 'POST',
              headers: { 'content-type': 'application/json' },
              body: JSON.stringify({
                v: 1,
                sessionGuid: `big-${round}-${index}`,
                topics: ['big'],
                cursors: { big: server.position },
              }),
            });
            const body = (await response.json()) as { messages?: unknown[]; resets?: string[] };
            expect(body.resets).toBeUndefined();
            expect(body.messages?.length).toBeGreaterThan(0);
            sizes.push(JSON.stringify(body).length);
          }),
        );
      }
    })();

    const sent: string[] = [];
    for (let index = 0; index < 30; index += 1) {
      await honest.send('honest', `m${index}`);
      sent.push(`m${index}`);
    }
    await Promise.all([
      bigPolls,
      poisoned.then((statuses) => expect(new Set(statuses)).toEqual(new Set([400]))),
    ]);
    await vi.waitFor(() => expect(got).toHaveLength(30), { timeout: 15_000 });
    // Everything, in order, once.
    expect(got).toEqual(sent);

    // The floods were closed: only the honest client's connection and the sender remain.
    await vi.waitFor(
      async () => expect((await server.report()).stats.sockets).toBeLessThanOrEqual(2),
      { timeout: 20_000, interval: 500 },
    );
    bad.socket.destroy();
    pings.socket.destroy();
    await Promise.all(floods);

    const after = await server.report();
    expect(server.died()).toBeUndefined();
    expect(after.onSendMax).toBeLessThanOrEqual(32);
    for (const size of sizes) expect(size).toBeLessThanOrEqual(1_048_576 + 61_000);
    expect(sizes).toHaveLength(20);
    // Back near its baseline once the floods are gone (the history itself is 12 MB of it).
    expect(after.heap).toBeLessThan(baseline + 16 * 1_048_576);
  }, 90_000);
});
