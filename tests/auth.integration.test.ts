/**
 * Authentication end to end, per transport: a real client against a real `@cometkit/server`
 * on loopback with bearer tokens. A token that expires mid-session is refreshed through the
 * client's `auth` hook without losing or repeating a message (and, on a WebSocket, without a
 * new socket); a revoked user gets nothing published after `disconnect()` resolved.
 */
import type { IncomingMessage } from 'node:http';
import {
  type CometClient,
  type CometError,
  type ConnectionState,
  createCometClient,
  type TransportName,
} from '@cometkit/core';
import { createCometServer } from '@cometkit/server';
import { type StartedServer, startServer } from '@cometkit/test-utils';
import { afterEach, describe, expect, it, vi } from 'vitest';
import WebSocket from 'ws';

const clients: CometClient[] = [];
const servers: StartedServer[] = [];
afterEach(async () => {
  for (const client of clients.splice(0)) client.close();
  await Promise.all(servers.splice(0).map((server) => server.close()));
});

/** The application's token store: tokens `<user>-<n>`, valid until expired or revoked. */
function tokenApp() {
  const valid = new Set<string>();
  const revoked = new Set<string>();
  let issued = 0;
  const userOf = (req: IncomingMessage) => {
    const token = /^Bearer (\w+-\d+)$/.exec(req.headers.authorization ?? '')?.[1];
    if (token === undefined || !valid.has(token)) return undefined;
    const user = token.split('-')[0] as string;
    return revoked.has(user) ? undefined : user;
  };
  return {
    valid,
    revoked,
    issue(user: string) {
      issued += 1;
      const token = `${user}-${issued}`;
      valid.add(token);
      return token;
    },
    identify: userOf,
    authorize: ({ req, topic }: { req: IncomingMessage; topic: string }) => {
      const user = userOf(req);
      if (user === undefined) return { code: 'unauthorized', message: 'token expired or revoked' };
      return topic === `user:${user}`;
    },
  };
}

async function start(app: ReturnType<typeof tokenApp>) {
  const comet = createCometServer({
    identify: app.identify,
    authorize: app.authorize,
    // Open streams and sockets check their token again this often.
    reauthorizeInterval: 200,
  });
  const http = await startServer(comet);
  servers.push(http);
  let upgrades = 0;
  http.server.on('upgrade', () => {
    upgrades += 1;
  });
  return { comet, url: `${http.url}/api/comet`, upgrades: () => upgrades };
}

/** A client on one transport whose `headers()` reads the current token and `auth` refreshes it. */
function user(
  url: string,
  transport: TransportName,
  app: ReturnType<typeof tokenApp>,
  name: string,
) {
  let token = app.issue(name);
  const auth = vi.fn(() => {
    token = app.issue(name);
    return { authorization: `Bearer ${token}` };
  });
  const client = createCometClient({
    url,
    transports: [transport],
    wait: 2000,
    backoff: { initialDelay: 10, maxDelay: 50 },
    headers: () => ({ authorization: `Bearer ${token}` }),
    auth,
    environment: { WebSocket: () => WebSocket as unknown as typeof globalThis.WebSocket },
  });
  clients.push(client);
  const got: unknown[] = [];
  const errors: CometError[] = [];
  const states: ConnectionState['status'][] = [];
  client.on('error', (error) => errors.push(error));
  client.on('state', (state) => states.push(state.status));
  client.subscribe(`user:${name}`, (data) => got.push(data));
  return { client, got, errors, states, auth, token: () => token };
}

const TRANSPORTS: TransportName[] = ['websocket', 'stream', 'longpoll'];

describe.each(TRANSPORTS)('authentication over %s', (transport) => {
  it('delivers to a bearer-token client what is published to its topic', async () => {
    const app = tokenApp();
    const { comet, url } = await start(app);
    const ann = user(url, transport, app, 'ann');
    await vi.waitFor(() => expect(ann.client.getState().status).toBe('connected'));
    for (const n of [1, 2, 3]) await comet.publish('user:ann', n);
    await vi.waitFor(() => expect(ann.got).toEqual([1, 2, 3]));
    expect(ann.auth).not.toHaveBeenCalled();
    expect(ann.errors).toEqual([]);
  });

  it('refreshes a token that expires mid-session through the auth hook: nothing lost, nothing repeated', async () => {
    const app = tokenApp();
    const { comet, url, upgrades } = await start(app);
    const ann = user(url, transport, app, 'ann');
    await vi.waitFor(() => expect(ann.client.getState().status).toBe('connected'));
    const published: number[] = [];
    for (let n = 1; n <= 5; n += 1) {
      await comet.publish('user:ann', n);
      published.push(n);
    }
    await vi.waitFor(() => expect(ann.got).toEqual(published));
    // The token expires; publishing goes on until the client has refreshed it.
    app.valid.delete(ann.token());
    for (let n = 6; n <= 200 && ann.auth.mock.calls.length === 0; n += 1) {
      await comet.publish('user:ann', n);
      published.push(n);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(ann.auth).toHaveBeenCalledTimes(1);
    for (let n = published.length + 1; n <= published.length + 5; n += 1) {
      await comet.publish('user:ann', n);
    }
    const all = Array.from({ length: published.length + 5 }, (_, index) => index + 1);
    await vi.waitFor(() => expect(ann.got).toEqual(all));
    expect(ann.auth).toHaveBeenCalledTimes(1);
    expect(ann.errors).toEqual([]);
    if (transport === 'websocket') {
      // Refreshed on the open socket: no second upgrade, no reconnecting state.
      expect(upgrades()).toBe(1);
      expect(ann.states).toEqual(['connecting', 'connected']);
    }
  });

  it('refreshes the token of a send refused as expired, and publishes it once', async () => {
    const app = tokenApp();
    const { comet, url } = await start(app);
    const ann = user(url, transport, app, 'ann');
    await vi.waitFor(() => expect(ann.client.getState().status).toBe('connected'));
    app.valid.delete(ann.token());
    const messageId = await ann.client.send('user:ann', 'hello');
    expect(ann.auth).toHaveBeenCalled();
    const { messages } = await comet.recent('user:ann');
    expect(messages.map((message) => [message.id, message.data])).toEqual([[messageId, 'hello']]);
  });

  it('stops delivering to a revoked user: nothing published after disconnect() resolved arrives', async () => {
    const app = tokenApp();
    const { comet, url } = await start(app);
    const ann = user(url, transport, app, 'ann');
    const bob = user(url, transport, app, 'bob');
    await vi.waitFor(() => expect(ann.client.getState().status).toBe('connected'));
    await vi.waitFor(() => expect(bob.client.getState().status).toBe('connected'));
    await comet.publish('user:ann', 'before');
    await vi.waitFor(() => expect(ann.got).toEqual(['before']));
    app.revoked.add('ann');
    await comet.disconnect({ identity: 'ann' });
    await comet.publish('user:ann', 'after');
    await comet.publish('user:bob', 'still here');
    // Ann's client reconnects, is refused, asks its hook once, is refused again: topic dropped.
    await vi.waitFor(() => expect(ann.errors.map((error) => error.name)).toContain('TopicError'));
    expect(ann.got).toEqual(['before']);
    expect(ann.auth).toHaveBeenCalledTimes(1);
    await vi.waitFor(() => expect(bob.got).toEqual(['still here']));
  });

  it('stops an open connection when authorize starts refusing (reauthorizeInterval; a long-poll at its next poll)', async () => {
    const app = tokenApp();
    const { comet, url } = await start(app);
    const ann = user(url, transport, app, 'ann');
    await vi.waitFor(() => expect(ann.client.getState().status).toBe('connected'));
    app.revoked.add('ann');
    // A held long-poll is checked again when it ends (its `wait`, 2 s here).
    await vi.waitFor(() => expect(ann.errors.map((error) => error.name)).toContain('TopicError'), {
      timeout: 4000,
    });
    expect(ann.auth).toHaveBeenCalledTimes(1);
    expect(ann.got).toEqual([]);
    expect(comet.stats().waiting).toBe(0);
  });
});
