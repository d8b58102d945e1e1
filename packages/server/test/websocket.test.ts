import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { Cursors, TopicErrorBody, WireMessage } from '@cometkit/core/protocol';
import { createFront, type Front } from '@cometkit/test-utils';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { CometServerError, createCometServer, type MemoryBroker } from '../src/index';
import { post, serve, stopAll } from './helpers';

/** Any frame the server sends. */
interface Frame {
  type: string;
  cursors?: Cursors;
  messages?: WireMessage[];
  resets?: string[];
  errors?: Record<string, TopicErrorBody>;
  id?: string;
  messageId?: string;
  error?: { code: string; message: string };
  timings?: { idleTimeout?: number; heartbeat?: number };
}

interface Client {
  ws: WebSocket;
  /** The next frame (in arrival order); rejects if the socket closes first. */
  next(): Promise<Frame>;
  /** Frames received and not yet taken by `next`. */
  pending(): Frame[];
  send(frame: unknown): void;
  /** Resolves with the close code and reason. */
  closed: Promise<{ code: number; reason: string }>;
}

const clients: WebSocket[] = [];
const cleanups: (() => Promise<void> | void)[] = [];

/** Listens on a free loopback port; the server and `comet` are closed after the test. */
async function listenClosing(comet: { close(): Promise<void> }, server: Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(async () => {
    await comet.close();
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no address');
  return address.port;
}
afterEach(async () => {
  for (const ws of clients.splice(0)) ws.terminate();
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  await stopAll();
});

/** Opens a WebSocket; rejects with the HTTP status when the upgrade is refused. */
function connect(url: string, headers: Record<string, string> = {}): Promise<Client> {
  const ws = new WebSocket(url, { headers });
  clients.push(ws);
  const queue: Frame[] = [];
  const waiting: { resolve: (frame: Frame) => void; reject: (error: Error) => void }[] = [];
  let closedWith: { code: number; reason: string } | undefined;
  const closed = new Promise<{ code: number; reason: string }>((resolve) => {
    ws.on('close', (code, reason) => {
      closedWith = { code, reason: reason.toString() };
      for (const waiter of waiting.splice(0)) {
        waiter.reject(new Error(`closed ${code} ${reason.toString()}`));
      }
      resolve(closedWith);
    });
  });
  ws.on('message', (data) => {
    const frame = JSON.parse(data.toString()) as Frame;
    const waiter = waiting.shift();
    if (waiter) waiter.resolve(frame);
    else queue.push(frame);
  });
  const client: Client = {
    ws,
    next() {
      const frame = queue.shift();
      if (frame) return Promise.resolve(frame);
      if (closedWith) return Promise.reject(new Error(`closed ${closedWith.code}`));
      return new Promise((resolve, reject) => waiting.push({ resolve, reject }));
    },
    pending: () => [...queue],
    send: (frame) => ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame)),
    closed,
  };
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve(client));
    ws.once('unexpected-response', (_req, res: IncomingMessage) => {
      let body = '';
      res.on('data', (chunk: Buffer) => {
        body += chunk.toString();
      });
      res.on('end', () => reject(new UpgradeRefused(res.statusCode ?? 0, body, res.headers)));
    });
    ws.once('error', reject);
  });
}

class UpgradeRefused extends Error {
  constructor(
    readonly status: number,
    readonly body: string,
    readonly headers: IncomingMessage['headers'],
  ) {
    super(`upgrade refused with ${status}`);
  }
}

async function refusal(promise: Promise<unknown>): Promise<UpgradeRefused> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof UpgradeRefused) return error;
    throw error;
  }
  throw new Error('the upgrade was accepted');
}

function pollFrame(topics: string[], cursors: Cursors = {}): Record<string, unknown> {
  return { type: 'poll', v: 1, sessionGuid: 's-ws', topics, cursors };
}

async function wsServer(options: Parameters<typeof serve>[0] = {}) {
  const served = await serve(options);
  const broker = served.comet.broker as MemoryBroker;
  return { ...served, broker, wsUrl: `${served.base.replace('http:', 'ws:')}/_ws` };
}

/** Connects and polls `topics`, returning the client and its `open` frame. */
async function subscribed(wsUrl: string, topics: string[], cursors: Cursors = {}) {
  const client = await connect(wsUrl);
  client.send(pollFrame(topics, cursors));
  const open = await client.next();
  expect(open.type).toBe('open');
  return { client, open };
}

describe('WebSocket handler', () => {
  describe('subscriptions', () => {
    it('announces its idle timeout in open, so the client pings in time', async () => {
      const { wsUrl } = await wsServer({ webSocketIdleTimeout: 12_345 });
      const { open } = await subscribed(wsUrl, ['chat']);
      expect(open.timings).toEqual({ idleTimeout: 12_345 });
    });

    it('answers a poll with open and the position of every topic, then pushes messages', async () => {
      const { comet, wsUrl } = await wsServer();
      const { client, open } = await subscribed(wsUrl, ['chat', 'typing']);
      expect(Object.keys(open.cursors ?? {})).toEqual(['chat', 'typing']);
      const id = await comet.publish('chat', { text: 'hi' });
      expect(await client.next()).toEqual({
        type: 'messages',
        messages: [{ topic: 'chat', id, data: { text: 'hi' } }],
        cursors: { ...open.cursors, chat: id },
      });
    });

    it('rewinds a topic a poll frame adds, then pushes what follows', async () => {
      const { comet, wsUrl } = await wsServer();
      const { client } = await subscribed(wsUrl, ['typing']);
      const ids: string[] = [];
      for (let i = 0; i < 4; i += 1) ids.push(await comet.publish('chat', i));
      client.send({ ...pollFrame(['typing', 'chat']), rewind: { chat: { count: 3 } } });
      const open = await client.next();
      expect(open.type).toBe('open');
      expect(open.cursors?.chat).toBeUndefined();
      const rewound = await client.next();
      expect(rewound.messages?.map((m) => m.id)).toEqual(ids.slice(1));
      const live = await comet.publish('chat', 4);
      expect((await client.next()).messages?.map((m) => m.id)).toEqual([live]);
    });

    it('catches up from the cursors of the poll frame, after the open', async () => {
      const { comet, wsUrl } = await wsServer();
      const { client: first, open } = await subscribed(wsUrl, ['chat']);
      const one = await comet.publish('chat', 1);
      const two = await comet.publish('chat', 2);
      first.ws.close();
      const { client } = await subscribed(wsUrl, ['chat'], open.cursors);
      const batch = await client.next();
      expect(batch.messages?.map((m) => m.id)).toEqual([one, two]);
      expect(batch.cursors).toEqual({ chat: two });
    });

    it('replaces the topic set on a new poll, with one listener for the socket', async () => {
      const { comet, wsUrl, broker } = await wsServer();
      const { client } = await subscribed(wsUrl, ['a']);
      client.send(pollFrame(['b']));
      const open = await client.next();
      expect(open.type).toBe('open');
      expect(Object.keys(open.cursors ?? {})).toEqual(['b']);
      expect(broker.listenerCount()).toBe(1);
      await comet.publish('a', 'dropped');
      const id = await comet.publish('b', 'kept');
      const next = await client.next();
      expect(next.messages?.map((m) => m.id)).toEqual([id]);
    });

    it('reports resets and refused topics in open, asking authorize with the upgrade request', async () => {
      const { comet, wsUrl } = await wsServer({
        authorize: ({ req, topic, action }) =>
          action === 'poll' && (topic !== 'secret' || req.headers['x-role'] === 'admin'),
      });
      const client = await connect(wsUrl);
      client.send(pollFrame(['chat', 'secret'], { chat: 'old-epoch-3' }));
      const open = await client.next();
      expect(open.resets).toEqual(['chat']);
      expect(open.errors?.secret?.code).toBe('forbidden');
      const id = await comet.publish('chat', 'on');
      expect((await client.next()).messages?.map((m) => m.id)).toEqual([id]);
      const admin = await connect(wsUrl, { 'x-role': 'admin' });
      admin.send(pollFrame(['secret']));
      expect((await admin.next()).errors).toBeUndefined();
    });

    it('answers ping with pong', async () => {
      const { wsUrl } = await wsServer();
      const client = await connect(wsUrl);
      client.send({ type: 'ping' });
      expect(await client.next()).toEqual({ type: 'pong' });
    });

    it('leaves no listener, subscription or socket behind when the client goes away', async () => {
      const { comet, wsUrl, broker } = await wsServer();
      const { client } = await subscribed(wsUrl, ['a', 'b']);
      expect(comet.stats().sockets).toBe(1);
      expect(broker.listenerCount()).toBe(1);
      client.ws.terminate();
      await expect.poll(() => comet.stats().sockets).toBe(0);
      expect(broker.listenerCount()).toBe(0);
      await comet.publish('a', 'nobody');
    });

    it('terminates a socket that sends nothing for webSocketIdleTimeout, not one that pings', async () => {
      const { comet, wsUrl } = await wsServer({ webSocketIdleTimeout: 150 });
      const silent = await connect(wsUrl);
      const pinging = await connect(wsUrl);
      // Each pong proves the socket is open; 20 of them span several idle timeouts.
      for (let n = 0; n < 20; n += 1) {
        pinging.send({ type: 'ping' });
        expect((await pinging.next()).type).toBe('pong');
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
      expect((await silent.closed).code).toBe(1006);
      expect(pinging.ws.readyState).toBe(WebSocket.OPEN);
      expect(comet.stats().sockets).toBe(1);
    });
  });

  describe('sends', () => {
    it('acks a send with the message id and publishes it once, even when repeated', async () => {
      const { comet, wsUrl } = await wsServer();
      const { client } = await subscribed(wsUrl, ['chat']);
      client.send({ type: 'send', topic: 'chat', id: 'u-1', data: { text: 'hello' } });
      client.send({ type: 'send', topic: 'chat', id: 'u-1', data: { text: 'hello' } });
      const frames = [await client.next(), await client.next(), await client.next()];
      const acks = frames.filter((frame) => frame.type === 'ack');
      expect(acks).toHaveLength(2);
      const messageId = acks[0]?.messageId;
      expect(acks).toEqual([
        { type: 'ack', id: 'u-1', messageId },
        { type: 'ack', id: 'u-1', messageId },
      ]);
      expect(frames.find((frame) => frame.type === 'messages')?.messages).toEqual([
        { topic: 'chat', id: messageId, data: { text: 'hello' } },
      ]);
      expect((await comet.recent('chat')).messages).toHaveLength(1);
    });

    it('shares the idempotency window with HTTP sends of the same session', async () => {
      const { comet, wsUrl, base } = await wsServer();
      const { client } = await subscribed(wsUrl, ['chat']);
      client.send({ type: 'send', topic: 'chat', id: 'u-2', data: 'once' });
      let ack: Frame;
      do ack = await client.next();
      while (ack.type !== 'ack');
      const retried = await post(`${base}/chat`, {
        v: 1,
        sessionGuid: 's-ws',
        id: 'u-2',
        data: 'once',
      });
      expect(retried.body).toEqual({ id: 'u-2', messageId: ack.messageId });
      expect((await comet.recent('chat')).messages).toHaveLength(1);
    });

    it('nacks a send refused by authorize or onSend, with the code and message', async () => {
      const { wsUrl } = await wsServer({
        authorize: ({ action, topic }) => action === 'poll' || topic !== 'locked',
        onSend: ({ data, publish, topic }) => {
          if (typeof data !== 'string') throw new CometServerError(400, 'bad_request', 'text only');
          return publish(topic, data);
        },
      });
      const client = await connect(wsUrl);
      client.send({ type: 'send', topic: 'locked', id: 'n-1', data: 'x' });
      expect(await client.next()).toEqual({
        type: 'nack',
        id: 'n-1',
        error: { code: 'forbidden', message: 'not allowed to send topic "locked"' },
      });
      client.send({ type: 'send', topic: 'open', id: 'n-2', data: 42 });
      expect(await client.next()).toEqual({
        type: 'nack',
        id: 'n-2',
        error: { code: 'bad_request', message: 'text only' },
      });
    });

    it('nacks with internal and no details when onSend throws something else', async () => {
      const { wsUrl } = await wsServer({
        onSend: () => {
          throw new Error('at /srv/secret.js:1:1');
        },
      });
      const client = await connect(wsUrl);
      client.send({ type: 'send', topic: 'chat', id: 'i-1', data: 1 });
      expect(await client.next()).toEqual({
        type: 'nack',
        id: 'i-1',
        error: { code: 'internal', message: 'the server could not handle the frame' },
      });
    });
  });

  describe('bad frames', () => {
    it('answers an error frame to what it cannot act on and keeps serving the socket', async () => {
      const { wsUrl } = await wsServer();
      const client = await connect(wsUrl);
      const cases: [unknown, RegExp][] = [
        ['not json', /JSON object/],
        [[1, 2], /JSON object/],
        [{ type: 'subscribe' }, /unknown frame type "subscribe"/],
        [{ topics: ['a'] }, /unknown frame type/],
        [pollFrame(['_bad']), /must start with a letter or digit/],
        [{ type: 'poll', topics: ['a'] }, /"v": 1/],
        [{ type: 'send', topic: 'chat', data: 1 }, /"id"/],
      ];
      for (const [frame, message] of cases) {
        client.send(frame);
        const answer = await client.next();
        expect(answer.type).toBe('error');
        expect(answer.error?.code).toBe('bad_request');
        expect(answer.error?.message).toMatch(message);
      }
      client.send({ type: 'send', topic: '_bad', id: 'b-1', data: 1 });
      expect(await client.next()).toMatchObject({
        type: 'nack',
        id: 'b-1',
        error: { code: 'bad_request' },
      });
      client.send({ type: 'send', topic: 'chat', id: 'b-2' });
      expect(await client.next()).toMatchObject({
        type: 'nack',
        id: 'b-2',
        error: { code: 'bad_request' },
      });
      client.send({ type: 'ping' });
      expect(await client.next()).toEqual({ type: 'pong' });
    });

    it('stops the current subscription when a replacing poll is invalid', async () => {
      const { wsUrl, broker } = await wsServer();
      const { client } = await subscribed(wsUrl, ['a']);
      client.send(pollFrame([]));
      expect((await client.next()).type).toBe('error');
      await expect.poll(() => broker.listenerCount()).toBe(0);
    });

    it('closes with 1009 on a frame larger than bodyLimit and with 1003 on a binary frame', async () => {
      const { comet, wsUrl } = await wsServer({ bodyLimit: 100 });
      const large = await connect(wsUrl);
      large.send({ type: 'send', topic: 'chat', id: 'l-1', data: 'x'.repeat(200) });
      expect((await large.closed).code).toBe(1009);
      const binary = await connect(wsUrl);
      binary.ws.send(Buffer.from([1, 2, 3]));
      expect(await binary.closed).toEqual({ code: 1003, reason: 'text frames of JSON only' });
      const fine = await connect(wsUrl);
      fine.send({ type: 'ping' });
      expect(await fine.next()).toEqual({ type: 'pong' });
      await expect.poll(() => comet.stats().sockets).toBe(1);
    });
  });

  describe('drain', () => {
    it('answers pending sends, closes sockets with 1012, then refuses upgrades with 503', async () => {
      let release: () => void = () => {};
      const gate = new Promise<void>((resolve) => {
        release = resolve;
      });
      let sendStarted = false;
      const { comet, wsUrl, broker } = await wsServer({
        onSend: async ({ publish, topic, data }) => {
          sendStarted = true;
          await gate;
          return publish(topic, data);
        },
      });
      const { client } = await subscribed(wsUrl, ['chat']);
      const { client: other } = await subscribed(wsUrl, ['typing']);
      client.send({ type: 'send', topic: 'chat', id: 'd-1', data: 'last words' });
      await expect.poll(() => sendStarted).toBe(true);
      const closing = comet.close();
      // The subscription stops at once; the socket stays open for the pending send.
      expect((await other.closed).code).toBe(1012);
      expect(client.ws.readyState).toBe(WebSocket.OPEN);
      release();
      expect(await client.next()).toMatchObject({ type: 'ack', id: 'd-1' });
      expect(await client.closed).toEqual({ code: 1012, reason: 'server restarting: reconnect' });
      await closing;
      expect(broker.listenerCount()).toBe(0);
      const refused = await refusal(connect(wsUrl));
      expect(refused.status).toBe(503);
      expect(refused.headers['retry-after']).toBe('1');
      expect(JSON.parse(refused.body).error.code).toBe('unavailable');
    });
  });

  describe('upgrades', () => {
    it('refuses an Origin outside cors.origins with 403 and accepts the listed one', async () => {
      const { wsUrl } = await wsServer({ cors: { origins: ['https://app.test'] } });
      const refused = await refusal(connect(wsUrl, { origin: 'https://evil.test' }));
      expect(refused.status).toBe(403);
      expect(JSON.parse(refused.body).error.code).toBe('forbidden');
      const client = await connect(wsUrl, { origin: 'https://app.test' });
      client.send({ type: 'ping' });
      expect(await client.next()).toEqual({ type: 'pong' });
    });

    it('answers 404 to an upgrade under the base path that is not _ws, 426 to a plain GET', async () => {
      const { base, wsUrl } = await wsServer();
      const refused = await refusal(connect(`${base.replace('http:', 'ws:')}/chat`));
      expect(refused.status).toBe(404);
      const plain = await fetch(wsUrl.replace('ws:', 'http:'));
      expect(plain.status).toBe(426);
      expect(plain.headers.get('upgrade')).toBe('websocket');
      await plain.text();
    });

    it('attach() serves its path and leaves other upgrades to their own handlers', async () => {
      const comet = createCometServer();
      const server: Server = createServer((req, res) => comet.handle(req, res));
      const other = new WebSocketServer({ noServer: true });
      server.on('upgrade', (req, socket, head) => {
        if (req.url !== '/elsewhere') return;
        other.handleUpgrade(req, socket, head, (ws) => ws.send('not cometkit'));
      });
      const detach = comet.attach(server);
      const port = await listenClosing(comet, server);
      cleanups.push(() => other.close());
      const root = `ws://127.0.0.1:${port}`;
      const elsewhere = new WebSocket(`${root}/elsewhere`);
      clients.push(elsewhere);
      const greeting = await new Promise<string>((resolve, reject) => {
        elsewhere.once('message', (data) => resolve(data.toString()));
        elsewhere.once('error', reject);
      });
      expect(greeting).toBe('not cometkit');
      const client = await connect(`${root}/api/comet/_ws`);
      client.send({ type: 'ping' });
      expect(await client.next()).toEqual({ type: 'pong' });
      expect(comet.stats().sockets).toBe(1);
      detach();
      expect(server.listenerCount('upgrade')).toBe(1);
    });

    it('serves the first upgrade given to handleUpgrade without attach() (ws loads then)', async () => {
      const comet = createCometServer();
      const server: Server = createServer((req, res) => comet.handle(req, res));
      server.on('upgrade', (req, socket, head) => comet.handleUpgrade(req, socket, head));
      const port = await listenClosing(comet, server);
      const first = await connect(`ws://127.0.0.1:${port}/api/comet/_ws`);
      const second = await connect(`ws://127.0.0.1:${port}/api/comet/_ws`);
      first.send({ type: 'ping' });
      second.send({ type: 'ping' });
      expect(await first.next()).toEqual({ type: 'pong' });
      expect(await second.next()).toEqual({ type: 'pong' });
      expect(comet.stats().sockets).toBe(2);
    });

    it('gets the 400 of a front that refuses upgrades, while passing through an ordinary one', async () => {
      const { started } = await wsServer();
      const refusing: Front = await createFront({ targets: [started.url], refuseUpgrades: true });
      const passing: Front = await createFront({ targets: [started.url] });
      cleanups.push(
        () => refusing.close(),
        () => passing.close(),
      );
      const refused = await refusal(
        connect(`${refusing.url.replace('http:', 'ws:')}/api/comet/_ws`),
      );
      expect(refused.status).toBe(400);
      const client = await connect(`${passing.url.replace('http:', 'ws:')}/api/comet/_ws`);
      client.send(pollFrame(['chat']));
      expect((await client.next()).type).toBe('open');
    });
  });
});
