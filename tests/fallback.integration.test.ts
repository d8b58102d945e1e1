/**
 * Transport fallback against real @cometkit/server instances on loopback, behind the test
 * front (round robin over two instances sharing one broker, no stickiness) that refuses
 * WebSocket upgrades or buffers responses like hostile load balancers and proxies do.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import {
  type CometClient,
  type CometClientOptions,
  createCometClient,
  type Diagnostic,
  type StorageLike,
  type TransportName,
} from '@cometkit/core';
import {
  type CometServer,
  createCometServer,
  createMemoryBroker,
  type MemoryBroker,
} from '@cometkit/server';
import { createFront, type Front, type StartedServer, startServer } from '@cometkit/test-utils';
import { afterEach, describe, expect, it, vi } from 'vitest';
import WebSocket from 'ws';

let broker: MemoryBroker | undefined;
const servers: StartedServer[] = [];
let front: Front | undefined;
const clients: CometClient[] = [];
let publishing: Promise<void> | undefined;
let stopPublishing = () => {};

afterEach(async () => {
  stopPublishing();
  await publishing;
  for (const c of clients.splice(0)) c.close();
  await front?.close();
  front = undefined;
  await Promise.all(servers.splice(0).map((s) => s.close()));
  await broker?.close();
  broker = undefined;
});

function memoryStorage(): StorageLike {
  const data = new Map<string, string>();
  return {
    getItem: (key) => data.get(key) ?? null,
    setItem: (key, value) => void data.set(key, value),
  };
}

/** Two instances sharing a broker behind a front; `wrap` may tamper with upgrades. */
async function setup(
  options: { refuseUpgrades?: boolean; bufferResponses?: boolean } = {},
  wrap?: (comet: CometServer) => (req: IncomingMessage, socket: Duplex, head: Buffer) => void,
) {
  broker = createMemoryBroker();
  const comets: CometServer[] = [];
  for (let i = 0; i < 2; i++) {
    const comet = createCometServer({ broker });
    comets.push(comet);
    servers.push(
      await startServer({
        handle: (req, res) => comet.handle(req, res),
        handleUpgrade:
          wrap?.(comet) ?? ((req, socket, head) => comet.handleUpgrade(req, socket, head)),
        close: () => comet.close(),
      }),
    );
  }
  front = await createFront({ targets: servers.map((s) => s.url), ...options });
  return comets[0] as CometServer;
}

/** A client through the front, subscribed to `chat` (from `cursor` when given). */
function client(storage: StorageLike, options: CometClientOptions = {}, cursor?: string) {
  const diagnostics: Diagnostic[] = [];
  const made = createCometClient({
    url: `${front?.url}/api/comet`,
    openTimeout: 500,
    wait: 2000,
    backoff: { initialDelay: 10, maxDelay: 50 },
    ...options,
    environment: {
      WebSocket: () => WebSocket as unknown as typeof globalThis.WebSocket,
      storage: () => storage,
    },
  });
  made.on('diagnostic', (d) => diagnostics.push(d));
  clients.push(made);
  const got: unknown[] = [];
  made.subscribe('chat', (data) => got.push(data), { cursor });
  return { client: made, diagnostics, got };
}

/** Publishes 0, 1, 2… every few ms until the test ends or `stop` is called; returns the count. */
function publishAllAlong(comet: CometServer) {
  let count = 0;
  let running = true;
  stopPublishing = () => {
    running = false;
  };
  publishing = (async () => {
    while (running) {
      await comet.publish('chat', count++);
      await new Promise((resolve) => setTimeout(resolve, 15));
    }
  })();
  return {
    async stop() {
      stopPublishing();
      await publishing;
      return count;
    },
  };
}

const connectedOn = (c: CometClient, transport: TransportName) =>
  vi.waitFor(() => expect(c.getState()).toEqual({ status: 'connected', transport }), {
    timeout: 10_000,
  });
const range = (n: number) => Array.from({ length: n }, (_, i) => i);

describe('transport fallback through a hostile front', () => {
  it('uses WebSocket when the path lets it through', async () => {
    await setup();
    const { client: c, diagnostics } = client(memoryStorage());
    await connectedOn(c, 'websocket');
    expect(diagnostics.map((d) => d.code)).not.toContain('transport-fallback');
  });

  it('is on streaming when upgrades are refused, and gets every message once and in order', async () => {
    const comet = await setup({ refuseUpgrades: true });
    // The client subscribes from the start of the topic, so messages before its open count too.
    const first = await comet.publish('chat', 'start');
    const publisher = publishAllAlong(comet);
    const storage = memoryStorage();
    const { client: c, diagnostics, got } = client(storage, { wait: 25_000 }, first);
    await connectedOn(c, 'stream');
    expect(diagnostics.find((d) => d.code === 'transport-fallback')?.message).toMatch(
      /WebSocket closed before open/,
    );
    await vi.waitFor(() => expect(got.length).toBeGreaterThan(5), { timeout: 10_000 });
    const count = await publisher.stop();
    await vi.waitFor(() => expect(got).toEqual(range(count)), { timeout: 10_000 });

    // A second start goes straight to what worked: no WebSocket attempt at all.
    const second = client(storage);
    await connectedOn(second.client, 'stream');
    expect(second.diagnostics.map((d) => d.code)).toContain('transport-remembered');
    expect(second.diagnostics.map((d) => d.code)).not.toContain('transport-fallback');
  });

  it('is on long-poll behind a buffering proxy, and gets every message once and in order', async () => {
    const comet = await setup({ refuseUpgrades: true, bufferResponses: true });
    const publisher = publishAllAlong(comet);
    const { client: c, diagnostics, got } = client(memoryStorage());
    await connectedOn(c, 'longpoll');
    expect(diagnostics.find((d) => d.detail?.from === 'stream')?.message).toMatch(
      /no open event in 0.5 s: a buffering proxy/,
    );
    await vi.waitFor(() => expect(got.length).toBeGreaterThan(5), { timeout: 10_000 });
    const count = await publisher.stop();
    // The first poll is a handshake: it starts after the messages published before it.
    const start = got[0] as number;
    await vi.waitFor(() => expect(got).toEqual(range(count).slice(start)), { timeout: 10_000 });
  });

  it('demotes a WebSocket that opens and then closes at once three times', async () => {
    let sabotaged = 0;
    await setup({}, (comet) => (req, socket, head) => {
      if (sabotaged < 3) {
        // Cut the connection right after the server's `open` frame went out.
        const write = socket.write.bind(socket) as (...args: unknown[]) => boolean;
        socket.write = ((chunk: unknown, ...rest: unknown[]) => {
          const done = write(chunk, ...rest);
          if (String(chunk).includes('"type":"open"')) {
            sabotaged++;
            setImmediate(() => socket.destroy());
          }
          return done;
        }) as typeof socket.write;
      }
      comet.handleUpgrade(req, socket, head);
    });
    const { client: c, diagnostics } = client(memoryStorage());
    await connectedOn(c, 'stream');
    expect(sabotaged).toBe(3);
    expect(diagnostics.find((d) => d.code === 'transport-demoted')?.detail).toMatchObject({
      from: 'websocket',
      to: 'stream',
      reason: 'early-deaths',
    });
  });

  it('moves back up to WebSocket when the front lets upgrades through again, without loss', async () => {
    const comet = await setup({ refuseUpgrades: true });
    const first = await comet.publish('chat', 'start');
    const publisher = publishAllAlong(comet);
    const storage = memoryStorage();
    const {
      client: c,
      diagnostics,
      got,
    } = client(storage, { wait: 25_000, upgradeInterval: 300 }, first);
    await connectedOn(c, 'stream');
    await vi.waitFor(
      () => expect(diagnostics.map((d) => d.code)).toContain('transport-probe-failed'),
      {
        timeout: 10_000,
      },
    );
    front?.setOptions({ refuseUpgrades: false });
    await connectedOn(c, 'websocket');
    expect(diagnostics.map((d) => d.code)).toContain('transport-upgrade');
    const before = got.length;
    await vi.waitFor(() => expect(got.length).toBeGreaterThan(before + 5), { timeout: 10_000 });
    const count = await publisher.stop();
    await vi.waitFor(() => expect(got).toEqual(range(count)), { timeout: 10_000 });
  });
});
