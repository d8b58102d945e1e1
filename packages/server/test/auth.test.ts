import type { IncomingMessage } from 'node:http';
import type { Cursors, TopicErrorBody, WireMessage } from '@cometkit/core/protocol';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { type AuthorizeHook, createCometServer, createMemoryBroker } from '../src/index';
import { post, serve, stopAll } from './helpers';

interface Frame {
  type: string;
  cursors?: Cursors;
  messages?: WireMessage[];
  errors?: Record<string, TopicErrorBody>;
  id?: string;
  messageId?: string;
  error?: { code: string; message: string };
}

interface Socket {
  next(): Promise<Frame>;
  send(frame: unknown): void;
  closed: Promise<number>;
}

const sockets: WebSocket[] = [];
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const ws of sockets.splice(0)) ws.terminate();
  for (const cleanup of cleanups.splice(0)) await cleanup();
  await stopAll();
});

function open(url: string, headers: Record<string, string> = {}): Promise<Socket> {
  const ws = new WebSocket(url, { headers });
  sockets.push(ws);
  const queue: Frame[] = [];
  const waiting: ((frame: Frame) => void)[] = [];
  const closed = new Promise<number>((resolve) => ws.on('close', (code) => resolve(code)));
  ws.on('message', (data) => {
    const frame = JSON.parse(data.toString()) as Frame;
    const waiter = waiting.shift();
    if (waiter) waiter(frame);
    else queue.push(frame);
  });
  const socket: Socket = {
    next: () => {
      const frame = queue.shift();
      return frame ? Promise.resolve(frame) : new Promise((resolve) => waiting.push(resolve));
    },
    send: (frame) => ws.send(JSON.stringify(frame)),
    closed,
  };
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve(socket));
    ws.once('unexpected-response', (_req, res: IncomingMessage) =>
      reject(new Error(`upgrade refused with ${res.statusCode}`)),
    );
    ws.once('error', reject);
  });
}

const wsUrl = (base: string) => `${base.replace('http:', 'ws:')}/_ws`;

function pollFrame(topics: string[], extra: Record<string, unknown> = {}) {
  return { type: 'poll', v: 1, sessionGuid: 's-ws', topics, ...extra };
}

function body(topics: string[], cursors: Cursors = {}, wait?: number) {
  return { v: 1, sessionGuid: 's-http', topics, cursors, ...(wait === undefined ? {} : { wait }) };
}

/** Reads a stream's events (`open`, `messages`) until it ends. */
async function openStream(url: string, payload: unknown, headers: Record<string, string> = {}) {
  const controller = new AbortController();
  cleanups.push(async () => controller.abort());
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(payload),
    signal: controller.signal,
  });
  const reader = response.body?.getReader();
  if (!reader) throw new Error('no body');
  const decoder = new TextDecoder();
  let buffer = '';
  return {
    response,
    /** The next event, or undefined when the stream ended. */
    async next(): Promise<{ event: string; data: Frame } | undefined> {
      for (;;) {
        const end = buffer.indexOf('\n\n');
        if (end !== -1) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const event = /^event: (.*)$/m.exec(block)?.[1];
          const data = /^data: (.*)$/m.exec(block)?.[1];
          if (event && data) return { event, data: JSON.parse(data) as Frame };
          continue;
        }
        const chunk = await reader.read().catch(() => ({ done: true as const, value: undefined }));
        if (chunk.done) return undefined;
        buffer += decoder.decode(chunk.value, { stream: true });
      }
    },
  };
}

/** Allows `Bearer good-<user>` tokens that are not in `revoked`, on topics `user:<user>`/`chat`. */
function bearer(revoked = new Set<string>()): AuthorizeHook {
  return ({ req, topic }) => {
    const token = /^Bearer good-(\w+)$/.exec(req.headers.authorization ?? '')?.[1];
    if (token === undefined || revoked.has(token)) {
      return { code: 'unauthorized', message: 'token missing or expired' };
    }
    return topic === 'chat' || topic === `user:${token}`;
  };
}

const identifyBearer = (req: IncomingMessage) =>
  /^Bearer good-(\w+)$/.exec(req.headers.authorization ?? '')?.[1];

describe('one credential path', () => {
  it('gives authorize the bearer token of a poll frame as req.headers.authorization', async () => {
    const { base } = await serve({ authorize: bearer() });
    const ws = await open(wsUrl(base));
    ws.send(pollFrame(['user:ann'], { headers: { Authorization: 'Bearer good-ann' } }));
    const opened = await ws.next();
    expect(opened.type).toBe('open');
    expect(opened.errors).toBeUndefined();
    expect(opened.cursors?.['user:ann']).toBeTypeOf('string');
  });

  it('refuses a poll frame without the token, as long-poll and streaming do', async () => {
    const { base } = await serve({ authorize: bearer() });
    const ws = await open(wsUrl(base));
    ws.send(pollFrame(['user:ann']));
    expect((await ws.next()).errors?.['user:ann']?.code).toBe('unauthorized');
    const polled = await post(base, body(['user:ann']));
    expect(polled.body.errors?.['user:ann']?.code).toBe('unauthorized');
    const allowed = await post(base, body(['user:ann']), {
      headers: { authorization: 'Bearer good-ann' },
    });
    expect(allowed.body.errors).toBeUndefined();
  });

  it('checks sends with the latest headers of the socket, and new headers replace them', async () => {
    const { base } = await serve({ authorize: bearer() });
    const ws = await open(wsUrl(base));
    ws.send(pollFrame(['chat'], { headers: { authorization: 'Bearer good-ann' } }));
    await ws.next();
    ws.send({ type: 'send', topic: 'user:ann', id: 'a-1', data: 1 });
    expect((await ws.next()).type).toBe('ack');
    // Another token on a send frame: from now on the socket is bob's.
    ws.send({
      type: 'send',
      topic: 'user:ann',
      id: 'a-2',
      data: 2,
      headers: { authorization: 'Bearer good-bob' },
    });
    const refused = await ws.next();
    expect(refused).toMatchObject({ type: 'nack', id: 'a-2', error: { code: 'forbidden' } });
    ws.send({ type: 'send', topic: 'user:bob', id: 'b-1', data: 3 });
    expect((await ws.next()).type).toBe('ack');
  });

  it('refuses a frame that sets a header a page cannot set (cookie, origin, host)', async () => {
    const { base } = await serve({ authorize: () => true });
    const ws = await open(wsUrl(base));
    for (const name of ['cookie', 'Origin', 'host', 'sec-websocket-key']) {
      ws.send(pollFrame(['chat'], { headers: { [name]: 'x' } }));
      const frame = await ws.next();
      expect(frame.type).toBe('error');
      expect(frame.error?.message).toContain(name.toLowerCase());
    }
    ws.send(pollFrame(['chat'], { headers: ['authorization'] }));
    expect((await ws.next()).type).toBe('error');
  });

  it("never lets a frame's header replace one of the upgrade request", async () => {
    const seen: (string | undefined)[] = [];
    const { base } = await serve({
      authorize: ({ req }) => {
        seen.push(req.headers['x-tenant'] as string | undefined);
        return true;
      },
    });
    const ws = await open(wsUrl(base), { 'x-tenant': 'real' });
    ws.send(pollFrame(['chat'], { headers: { 'x-tenant': 'forged' } }));
    await ws.next();
    expect(seen).toEqual(['real']);
  });
});

describe('cookies across origins', () => {
  const cookieAuth: AuthorizeHook = ({ req }) =>
    /session=ann/.test(req.headers.cookie ?? '') || { code: 'unauthorized', message: 'no session' };

  it('refuses cors.origins "*" with credentials at startup', () => {
    expect(() => createCometServer({ cors: { origins: '*', credentials: true } })).toThrow(
      /list the origins/,
    );
  });

  it('strips the cookie of a cross-origin upgrade when cors.credentials is off', async () => {
    const { base, started } = await serve({ cors: { origins: '*' }, authorize: cookieAuth });
    const evil = await open(wsUrl(base), { origin: 'http://evil.test', cookie: 'session=ann' });
    evil.send(pollFrame(['user:ann']));
    expect((await evil.next()).errors?.['user:ann']?.code).toBe('unauthorized');
    // The same cookie from the server's own origin is the user's.
    const own = await open(wsUrl(base), {
      origin: `http://127.0.0.1:${started.port}`,
      cookie: 'session=ann',
    });
    own.send(pollFrame(['user:ann']));
    expect((await own.next()).errors).toBeUndefined();
  });

  it('strips the cookie of a cross-origin long-poll and stream when cors.credentials is off', async () => {
    const { base } = await serve({ cors: { origins: ['http://app.test'] }, authorize: cookieAuth });
    const headers = { origin: 'http://app.test', cookie: 'session=ann' };
    const polled = await post(base, body(['user:ann']), { headers });
    expect(polled.body.errors?.['user:ann']?.code).toBe('unauthorized');
    const stream = await openStream(`${base}/_stream`, body(['user:ann']), headers);
    expect((await stream.next())?.data.errors?.['user:ann']?.code).toBe('unauthorized');
  });

  it('keeps the cookie of an allowed origin with cors.credentials', async () => {
    const { base } = await serve({
      cors: { origins: ['http://app.test'], credentials: true },
      authorize: cookieAuth,
    });
    const ws = await open(wsUrl(base), { origin: 'http://app.test', cookie: 'session=ann' });
    ws.send(pollFrame(['user:ann']));
    expect((await ws.next()).errors).toBeUndefined();
    await expect(
      open(wsUrl(base), { origin: 'http://evil.test', cookie: 'session=ann' }),
    ).rejects.toThrow(/403/);
  });
});

describe('identity', () => {
  it('scopes send ids by the identify hook, not by the userId a client claims', async () => {
    const { base, comet } = await serve({ identify: identifyBearer });
    const send = (token: string, sessionGuid: string) =>
      post(
        `${base}/chat`,
        { v: 1, sessionGuid, userId: 'ann', id: 'same-id', data: token },
        { headers: { authorization: `Bearer good-${token}` } },
      );
    const first = await send('ann', 'tab-1');
    // Ann again from another tab: the same send.
    expect((await send('ann', 'tab-2')).body.messageId).toBe(first.body.messageId);
    // Mallory claims userId "ann" with the same id: her own send, not a look at Ann's.
    const mallory = await send('mallory', 'tab-3');
    expect(mallory.body.messageId).not.toBe(first.body.messageId);
    const { messages } = await comet.recent('chat');
    expect(messages.map((message) => message.data)).toEqual(['ann', 'mallory']);
  });

  it('gives authorize and onSend the identity, on the WebSocket from frame headers', async () => {
    const seen: (string | undefined)[] = [];
    const { base } = await serve({
      identify: identifyBearer,
      authorize: ({ identity }) => {
        seen.push(identity);
        return true;
      },
      onSend: ({ identity, publish, topic, data }) => {
        seen.push(`send:${identity}`);
        return publish(topic, data);
      },
    });
    const ws = await open(wsUrl(base));
    ws.send(pollFrame(['chat'], { headers: { authorization: 'Bearer good-ann' } }));
    await ws.next();
    ws.send({ type: 'send', topic: 'chat', id: 's-1', data: 1 });
    await ws.next();
    expect(seen).toEqual(['ann', 'ann', 'send:ann']);
  });
});

describe('disconnect', () => {
  it('ends the held long-poll, the stream and the socket of an identity, and nobody else', async () => {
    const { base, comet } = await serve({ identify: identifyBearer });
    const ann = { authorization: 'Bearer good-ann' };
    const first = await post(base, body(['chat']), { headers: ann });
    const cursors = first.body.cursors ?? {};
    const held = post(base, body(['chat'], cursors, 20_000), { headers: ann });
    const stream = await openStream(`${base}/_stream`, body(['chat'], cursors), ann);
    expect((await stream.next())?.event).toBe('open');
    const annSocket = await open(wsUrl(base));
    annSocket.send(pollFrame(['chat'], { cursors, headers: ann }));
    await annSocket.next();
    const bobSocket = await open(wsUrl(base));
    bobSocket.send(pollFrame(['chat'], { cursors, headers: { authorization: 'Bearer good-bob' } }));
    await bobSocket.next();
    await expect.poll(() => comet.stats().waiting).toBe(4);

    expect(await comet.disconnect({ identity: 'ann' })).toBe(3);
    expect((await held).body).toEqual({ reconnect: true, cursors });
    expect(await stream.next()).toBeUndefined();
    expect(await annSocket.closed).toBe(4001);
    // Bob still receives.
    await comet.publish('chat', 'after');
    expect((await bobSocket.next()).messages?.[0]?.data).toBe('after');
  });

  it('ends the connections on every instance sharing the broker', async () => {
    const broker = createMemoryBroker();
    cleanups.push(() => broker.close());
    const a = await serve({ broker, identify: identifyBearer });
    const b = await serve({ broker, identify: identifyBearer });
    const onB = await open(wsUrl(b.base));
    onB.send(pollFrame(['chat'], { headers: { authorization: 'Bearer good-ann' } }));
    await onB.next();
    expect(await a.comet.disconnect({ identity: 'ann' })).toBe(0);
    expect(await onB.closed).toBe(4001);
  });

  it('matches by session and refuses an empty filter', async () => {
    const { base, comet } = await serve();
    const ws = await open(wsUrl(base));
    ws.send(pollFrame(['chat']));
    await ws.next();
    await expect(comet.disconnect({})).rejects.toThrow(/name an identity/);
    expect(await comet.disconnect({ sessionGuid: 'other' })).toBe(0);
    expect(await comet.disconnect({ sessionGuid: 's-ws' })).toBe(1);
    expect(await ws.closed).toBe(4001);
  });
});

describe('reauthorizeInterval', () => {
  it('stops a topic on an open socket once authorize refuses it, telling the client in errors', async () => {
    const revoked = new Set<string>();
    const { base, comet } = await serve({ authorize: bearer(revoked), reauthorizeInterval: 100 });
    const ws = await open(wsUrl(base));
    ws.send(pollFrame(['chat'], { headers: { authorization: 'Bearer good-ann' } }));
    await ws.next();
    await comet.publish('chat', 'before');
    const before = await ws.next();
    expect(before.messages?.[0]?.data).toBe('before');
    revoked.add('ann');
    const refused = await ws.next();
    expect(refused.type).toBe('messages');
    expect(refused.errors?.chat?.code).toBe('unauthorized');
    expect(refused.messages).toEqual([]);
    await comet.publish('chat', 'after');
    // New credentials on the same socket: subscribed again from the cursor, nothing lost.
    revoked.delete('ann');
    ws.send(
      pollFrame(['chat'], {
        cursors: before.cursors,
        headers: { authorization: 'Bearer good-ann' },
      }),
    );
    const frames = [await ws.next(), await ws.next()];
    expect(frames.flatMap((frame) => frame.messages ?? []).map((m) => m.data)).toEqual(['after']);
  });

  it('ends a stream whose every topic is refused on a later check', async () => {
    const revoked = new Set<string>();
    const { base } = await serve({ authorize: bearer(revoked), reauthorizeInterval: 100 });
    const stream = await openStream(`${base}/_stream`, body(['chat']), {
      authorization: 'Bearer good-ann',
    });
    expect((await stream.next())?.event).toBe('open');
    revoked.add('ann');
    const refused = await stream.next();
    expect(refused?.data.errors?.chat?.code).toBe('unauthorized');
    expect(await stream.next()).toBeUndefined();
  });
});
