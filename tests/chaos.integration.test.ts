/**
 * The delivery guarantee under faults: real @cometkit/server instances on loopback, sharing one
 * broker, behind the test front (round robin, no stickiness) that answers `408`s itself, throws
 * answers away after the server did the work (`504`), and cuts connections mid-answer,
 * mid-stream and shortly after WebSocket upgrades. Holds are short, so `{"reconnect": true}`
 * ends most polls, and streams end after a second; halfway, one instance is restarted. Clients on every transport ladder must get
 * every message once and in order, and every send must be published once.
 *
 * To explore: COMETKIT_CHAOS_SEED=n replays another fault sequence, COMETKIT_CHAOS_RATE=0.3
 * injects more (the default 0.15 is what CI runs).
 */
import {
  type CometClient,
  type CometClientOptions,
  createCometClient,
  type TransportName,
} from '@cometkit/core';
import { type CometServer, createCometServer, createMemoryBroker } from '@cometkit/server';
import { createFront, type Front, type StartedServer, startServer } from '@cometkit/test-utils';
import { afterEach, expect, it, vi } from 'vitest';
import WebSocket from 'ws';

const servers: StartedServer[] = [];
const clients: CometClient[] = [];
let front: Front | undefined;

afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await front?.close();
  front = undefined;
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

/** mulberry32: a small seeded generator, so a failing run's fault sequence can be replayed. */
function seeded(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const SEED = Number(process.env.COMETKIT_CHAOS_SEED ?? 20261201);
const RATE = Number(process.env.COMETKIT_CHAOS_RATE ?? 0.15);
const TOTAL = 240;

it(`delivers every message once and in order through a faulty, non-sticky front (seed ${SEED})`, async () => {
  const broker = createMemoryBroker();
  const comets: CometServer[] = [];
  /** Starts instance `i` (again, on its port, for a restart). */
  const start = async (i: number, port?: number) => {
    const comet = createCometServer({ broker, maxWait: 250, streamMaxTime: 1000 });
    comets[i] = comet;
    servers[i] = await startServer(
      {
        handle: (req, res) => comet.handle(req, res),
        handleUpgrade: (req, socket, head) => comet.handleUpgrade(req, socket, head),
        close: () => comet.close(),
      },
      { port },
    );
  };
  await start(0);
  await start(1);
  front = await createFront({
    targets: servers.map((s) => s.url),
    faults: { rate: RATE, random: seeded(SEED) },
  });

  const options: CometClientOptions = {
    url: `${front.url}/api/comet`,
    wait: 250,
    watchdogGrace: 1500,
    openTimeout: 400,
    upgradeInterval: 300,
    backoff: { initialDelay: 5, maxDelay: 60 },
    environment: {
      WebSocket: () => WebSocket as unknown as typeof globalThis.WebSocket,
      storage: () => undefined,
    },
  };
  const ladders: TransportName[][] = [
    ['websocket', 'stream', 'longpoll'],
    ['stream', 'longpoll'],
    ['longpoll'],
  ];
  const readers = ladders.flatMap((transports) =>
    [0, 1].map(() => {
      const client = createCometClient({ ...options, transports });
      clients.push(client);
      const got: number[] = [];
      const on = new Set<TransportName>();
      client.subscribeState((state) => {
        if (state.status === 'connected') on.add(state.transport);
      });
      client.subscribe('chaos', (data) => got.push((data as { n: number }).n));
      return { transports, got, on };
    }),
  );
  const sender = createCometClient({ ...options, transports: ['longpoll'] });
  clients.push(sender);

  // Every reader has been answered once, so each holds the position before message 0.
  await vi.waitFor(() => expect(readers.every((r) => r.on.size > 0)).toBe(true), {
    timeout: 10_000,
  });

  // In sequence, so the broker's order is 0, 1, 2…: half published on an instance, half sent by
  // a client through the front (a lost `504` answer makes it retry with the same id).
  const sent: (string | undefined)[] = [];
  for (let n = 0; n < TOTAL; n++) {
    // A rolling deploy of one instance: it drains its held requests, then is gone for 100 ms
    // (the front answers 502), then a new process takes its port.
    if (n === TOTAL / 2) {
      const { port } = servers[0] as StartedServer;
      await servers[0]?.close();
      await new Promise((resolve) => setTimeout(resolve, 100));
      await start(0, port);
    }
    if (n % 2 === 0) await (comets[n % 4 === 0 ? 0 : 1] as CometServer).publish('chaos', { n });
    else sent.push(await sender.send('chaos', { n }));
    await new Promise((resolve) => setTimeout(resolve, 4));
  }

  // A last message as a barrier: delivery is in order, so once every reader has it, anything
  // lost or repeated before it is in `got` (instead of sleeping for late repeats).
  await (comets[1] as CometServer).publish('chaos', { n: TOTAL });
  const all = Array.from({ length: TOTAL + 1 }, (_, n) => n);
  await vi.waitFor(
    () => {
      for (const reader of readers) expect(reader.got).toContain(TOTAL);
    },
    { timeout: 30_000, interval: 50 },
  );
  for (const reader of readers) expect(reader.got, `${reader.transports.join('>')}`).toEqual(all);
  expect(new Set(sent).size).toBe(TOTAL / 2);
  // The run did what it says: every kind of fault happened, more than once.
  const faults = front.faults();
  for (const kind of ['timeout', 'lost-answer', 'reset'] as const)
    expect(faults.get(kind) ?? 0, kind).toBeGreaterThan(2);
}, 60_000);
