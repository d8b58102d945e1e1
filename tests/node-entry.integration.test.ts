import type { CometClient } from '@cometkit/core';
import { createCometClient } from '@cometkit/core/node';
import { type CometServer, createCometServer } from '@cometkit/server';
import { type StartedServer, startServer } from '@cometkit/test-utils';
import { afterEach, describe, expect, it, vi } from 'vitest';

let comet: CometServer | undefined;
let http: StartedServer | undefined;
const clients: CometClient[] = [];

afterEach(async () => {
  vi.restoreAllMocks();
  for (const c of clients.splice(0)) c.close();
  await http?.close();
  http = undefined;
  comet = undefined;
});

/** A server on loopback that counts the TCP connections and requests it accepts. */
async function start() {
  comet = createCometServer();
  http = await startServer(comet);
  const counts = { connections: 0, requests: 0 };
  http.server.on('connection', () => {
    counts.connections += 1;
  });
  http.server.on('request', () => {
    counts.requests += 1;
  });
  return counts;
}

function client(options: Parameters<typeof createCometClient>[0] = {}) {
  const made = createCometClient({
    url: `${http?.url}/api/comet`,
    transports: ['longpoll'],
    ...options,
  });
  clients.push(made);
  return made;
}

describe('the Node entry point (node:http) against a real @cometkit/server', () => {
  it('polls and sends without fetch', async () => {
    await start();
    const fetchSpy = vi.spyOn(globalThis, 'fetch');
    const reader = client();
    const got: unknown[] = [];
    reader.subscribe('chat', (data) => got.push(data));
    await vi.waitFor(() => expect(reader.getState().status).toBe('connected'));
    const id = await client().send('chat', { text: 'hi' });
    await vi.waitFor(() => expect(got).toEqual([{ text: 'hi' }]));
    expect(id).toMatch(/.+/);
    expect(fetchSpy).not.toHaveBeenCalled();
  });

  it('keeps one TCP connection per client: each re-poll reuses the connection its answer came on', async () => {
    const counts = await start();
    const reader = client();
    const got: number[] = [];
    reader.subscribe('chat', (data) => got.push(data as number));
    await vi.waitFor(() => expect(reader.getState().status).toBe('connected'));
    for (let round = 1; round <= 10; round += 1) {
      // Published while the poll is held: the answer is a wake-up, the re-poll follows at once.
      await vi.waitFor(() => expect(comet?.stats().waiting).toBe(1));
      await comet?.publish('chat', round);
      await vi.waitFor(() => expect(got).toHaveLength(round));
    }
    await vi.waitFor(() => expect(comet?.stats().waiting).toBe(1));
    // The handshake, the first held poll, 10 re-polls after wake-ups: 12 requests, 1 connection.
    expect(counts.requests).toBe(12);
    expect(counts.connections).toBe(1);
  });

  it('closes its connections when the client closes', async () => {
    await start();
    let open = 0;
    http?.server.on('connection', (socket) => {
      open += 1;
      socket.on('close', () => {
        open -= 1;
      });
    });
    const reader = client();
    reader.subscribe('chat', () => {});
    await vi.waitFor(() => expect(reader.getState().status).toBe('connected'));
    await client().send('chat', 'hi');
    expect(open).toBe(2);
    clients.splice(0).forEach((c) => {
      c.close();
    });
    // The held poll's connection and the idle one of the send, before any keep-alive timeout.
    await vi.waitFor(() => expect(open).toBe(0));
  });

  it('uses an injected fetch instead when one is given', async () => {
    await start();
    const fetch = vi.fn((input: Request | string | URL, init?: RequestInit) =>
      globalThis.fetch(input, init),
    );
    const reader = client({ environment: { fetch } });
    reader.subscribe('chat', () => {});
    await vi.waitFor(() => expect(reader.getState().status).toBe('connected'));
    expect(fetch).toHaveBeenCalled();
  });
});
