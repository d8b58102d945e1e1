/**
 * The README's client snippet, in its order, against a real @cometkit/server on loopback, on
 * each transport: listeners, subscribe, then `await send` at once. The subscription must see
 * its own message (the send waits for the topic's handshake), and the state listener must see
 * the connection come up, not only `closed`.
 */
import {
  type CometClient,
  type CometMessage,
  createCometClient,
  type TransportName,
} from '@cometkit/core';
import { createCometServer } from '@cometkit/server';
import { type StartedServer, startServer } from '@cometkit/test-utils';
import { afterEach, describe, expect, it, vi } from 'vitest';
import WebSocket from 'ws';

type Topics = { chat: { name: string; text: string } };

let http: StartedServer | undefined;
let client: CometClient<Topics> | undefined;

afterEach(async () => {
  client?.close();
  await http?.close();
  client = undefined;
});

describe("the README's client snippet against a real server", () => {
  it.each<TransportName>(['websocket', 'stream', 'longpoll'])(
    'sees its own message on %s',
    async (transport) => {
      const comet = createCometServer();
      http = await startServer(comet);
      const readme = createCometClient<Topics>({
        url: `${http.url}/api/comet`,
        userId: 'ann',
        transports: [transport],
        environment: { WebSocket: () => WebSocket as unknown as typeof globalThis.WebSocket },
      });
      client = readme;
      const states: string[] = [];
      const codes: string[] = [];
      readme.subscribeState((state) => states.push(state.status));
      readme.on('diagnostic', (d) => codes.push(d.code));
      const got: CometMessage[] = [];
      readme.subscribe('chat', (_data, message) => got.push(message));
      const id = await readme.send('chat', { name: 'Ann', text: 'Hello' });
      expect(typeof id).toBe('string');
      await vi.waitFor(() => expect(got).toHaveLength(1));
      expect(got[0]).toEqual({ topic: 'chat', id, data: { name: 'Ann', text: 'Hello' } });
      expect(readme.getState()).toEqual({ status: 'connected', transport });
      expect(states).toContain('connected');
      expect(codes).not.toContain('transport-fallback');
    },
  );
});
