/**
 * A client that stops a stream or a held poll really ends it at the server, also after a
 * garbage collection: ky wraps each fetch in a Request whose signal follows the client's only
 * through a weak reference (nodejs/node#55428), so an abort after the Request was collected
 * reached nothing and the stream stayed open. Needs `--expose-gc` (this project's execArgv).
 */
import { type CometClient, createCometClient, type TransportName } from '@cometkit/core';
import { type CometServer, createCometServer } from '@cometkit/server';
import { type StartedServer, startServer } from '@cometkit/test-utils';
import { afterEach, describe, expect, it, vi } from 'vitest';

let comet: CometServer | undefined;
let http: StartedServer | undefined;
let client: CometClient | undefined;

afterEach(async () => {
  client?.close();
  await http?.close();
  client = undefined;
  comet = undefined;
});

const gc = () => (globalThis as { gc?: () => void }).gc?.();

async function connect(transport: TransportName) {
  comet = createCometServer();
  http = await startServer(comet);
  const server = comet;
  client = createCometClient({ url: `${http.url}/api/comet`, transports: [transport] });
  client.subscribe('chat', () => {});
  await vi.waitFor(() => expect(client?.getState().status).toBe('connected'));
  // The long-poll handshake is answered at once; the next poll is the held one.
  await vi.waitFor(() => expect(server.stats().waiting).toBe(1));
  return server;
}

describe('stopping a request after a garbage collection', () => {
  it('has --expose-gc', () => {
    expect(typeof (globalThis as { gc?: unknown }).gc).toBe('function');
  });

  it('ends the stream at the server when the client closes', async () => {
    const server = await connect('stream');
    expect(server.stats().streams).toBe(1);
    gc();
    await new Promise((resolve) => setTimeout(resolve, 50));
    gc();
    client?.close();
    await vi.waitFor(() => expect(server.stats().streams).toBe(0), { timeout: 3000 });
    expect(server.stats().held).toBe(0);
  });

  it('ends the held poll at the server when the client closes', async () => {
    const server = await connect('longpoll');
    gc();
    await new Promise((resolve) => setTimeout(resolve, 50));
    gc();
    client?.close();
    await vi.waitFor(() => expect(server.stats().held).toBe(0), { timeout: 3000 });
  });
});
