/**
 * The server's limits against hostile input (issue 13): backpressure and bad frames on a
 * WebSocket, JSON depth and encoding once at publish, the byte budget of answers, in-flight
 * sends per socket, close() with a deadline, hook time-boxes, options that are footguns, and
 * holds per session. Each test fails on the server as it was before these limits.
 */
import { request } from 'node:http';
import { floodFrames, maskedTextFrame, openRawWebSocket } from '@cometkit/test-utils';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import {
  type Broker,
  CometServerError,
  type CometServerOptions,
  createCometServer,
  createMemoryBroker,
} from '../src/index';
import { type Answer, poll, post, serve, stopAll } from './helpers';

const sockets: WebSocket[] = [];
afterEach(async () => {
  for (const ws of sockets.splice(0)) ws.terminate();
  await stopAll();
});

/** A `ws` client that collects every frame and its close code. */
async function wsClient(url: string) {
  const ws = new WebSocket(url.replace('http', 'ws'));
  sockets.push(ws);
  const frames: Record<string, unknown>[] = [];
  const closed = new Promise<number>((resolve) => ws.on('close', (code) => resolve(code)));
  ws.on('message', (data) => frames.push(JSON.parse(String(data))));
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  return { ws, frames, closed, send: (frame: unknown) => ws.send(JSON.stringify(frame)) };
}

async function wsServer(options: CometServerOptions = {}) {
  const served = await serve(options);
  const port = Number(new URL(served.url).port);
  return { ...served, port, wsUrl: `${served.base}/_ws` };
}

const deep = (levels: number) => {
  let value: unknown = 0;
  for (let level = 0; level < levels; level += 1) value = [value];
  return value;
};

describe('WebSocket backpressure and bad frames', () => {
  it('closes a socket with 1008 after maxBadFrames bad frames in a row', async () => {
    const { wsUrl } = await wsServer({ maxBadFrames: 5 });
    const client = await wsClient(wsUrl);
    for (let index = 0; index < 5; index += 1) client.ws.send('not json');
    expect(await client.closed).toBe(1008);
    expect(client.frames.filter((frame) => frame.type === 'error')).toHaveLength(4);
  });

  it('counts only bad frames in a row: a good frame between them starts over', async () => {
    const { wsUrl } = await wsServer({ maxBadFrames: 3 });
    const client = await wsClient(wsUrl);
    for (let index = 0; index < 10; index += 1) {
      client.ws.send('{');
      client.ws.send('{');
      client.send({ type: 'ping' });
    }
    await expect.poll(() => client.frames.length).toBe(30);
    expect(client.ws.readyState).toBe(WebSocket.OPEN);
  });

  it('closes a client that floods bad frames and never reads, and stays serving', async () => {
    const { comet, port, base } = await wsServer();
    const raw = await openRawWebSocket(port, '/api/comet/_ws');
    await expect.poll(() => comet.stats().sockets).toBe(1);
    // 100 000 seven-byte frames (700 KB), each worth an error frame of about 80 bytes.
    const flooding = floodFrames(raw, maskedTextFrame('x'), 100_000);
    await expect.poll(() => comet.stats().sockets, { timeout: 10_000 }).toBe(0);
    raw.socket.destroy();
    await flooding;
    expect((await post(base, poll(['a']))).status).toBe(200);
  });

  it('closes a client that floods pings and never reads its pongs', async () => {
    const { comet, port } = await wsServer();
    const raw = await openRawWebSocket(port, '/api/comet/_ws');
    await expect.poll(() => comet.stats().sockets).toBe(1);
    // 400 000 pings (8 MB): more pongs than the socket buffers hold.
    const flooding = floodFrames(raw, maskedTextFrame('{"type":"ping"}'), 400_000);
    await expect.poll(() => comet.stats().sockets, { timeout: 20_000 }).toBe(0);
    raw.socket.destroy();
    await flooding;
  }, 30_000);

  it('ends a stream whose client does not read once maxBufferedBytes are unread', async () => {
    const { comet, base } = await serve({ maxBufferedBytes: 65_536 });
    const { cursors } = (await post(base, poll(['big']))).body;
    const req = request(`${base}/_stream`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
    });
    let ended = false;
    req.on('response', (res) => {
      // Never reads the body.
      res.pause();
      res.on('close', () => {
        ended = true;
      });
    });
    req.on('error', () => {
      ended = true;
    });
    req.end(JSON.stringify(poll(['big'], cursors)));
    await expect.poll(() => comet.stats().streams).toBe(1);
    const data = 'x'.repeat(60_000);
    // Far more than the socket buffers on both sides hold: the stream must end, not queue.
    for (let index = 0; index < 400 && !ended; index += 1) {
      await comet.publish('big', data);
      if (index % 20 === 0) await new Promise((resolve) => setTimeout(resolve, 5));
    }
    await expect.poll(() => comet.stats().streams, { timeout: 10_000 }).toBe(0);
  }, 30_000);
});

describe('JSON depth and encoding once at publish', () => {
  it('refuses data nested deeper than maxDepth with 400, over HTTP, WebSocket and publish()', async () => {
    const { comet, base, wsUrl } = await wsServer({ maxDepth: 16 });
    const send = await post(`${base}/chat`, { v: 1, sessionGuid: 's', id: 'd1', data: deep(20) });
    expect(send.status).toBe(400);
    expect(send.body.error?.code).toBe('bad_request');
    expect((await post(base, { ...poll(['a']), extra: deep(20) })).status).toBe(400);
    const client = await wsClient(wsUrl);
    client.send({ type: 'send', topic: 'chat', id: 'd2', data: deep(20) });
    await expect.poll(() => client.frames.length).toBe(1);
    expect(client.frames[0]).toMatchObject({ type: 'error', error: { code: 'bad_request' } });
    await expect(comet.publish('chat', deep(20))).rejects.toMatchObject({ status: 400 });
    await expect(comet.publish('chat', { n: 1n })).rejects.toMatchObject({ status: 400 });
    expect((await comet.recent('chat')).messages).toEqual([]);
  });

  it('a poisoned message cannot block its topic: the messages after it are delivered', async () => {
    // 5 000 levels, as in the report: refused before anything is stored.
    const { base } = await serve();
    const { cursors } = (await post(base, poll(['chat']))).body;
    const text = `{"v":1,"sessionGuid":"s","id":"p1","data":${'['.repeat(5000)}${']'.repeat(5000)}}`;
    expect((await post(`${base}/chat`, text)).status).toBe(400);
    expect(
      (await post(`${base}/chat`, { v: 1, sessionGuid: 's', id: 'ok', data: 'valid' })).status,
    ).toBe(200);
    const answer = await post(base, poll(['chat'], cursors));
    expect(answer.status).toBe(200);
    expect(answer.body.messages?.map((message) => message.data)).toEqual(['valid']);
  });

  it('skips a stored message a custom broker cannot encode instead of failing every answer', async () => {
    const memory = createMemoryBroker();
    // A custom broker without `json` that hands out a value JSON cannot encode.
    const broker: Broker = {
      ...memory,
      async read(topic, cursor, limit) {
        const result = await memory.read(topic, cursor, limit);
        return {
          ...result,
          // `data` is read, not spread: the memory broker decodes it on demand (a getter).
          messages: result.messages.map(({ topic, id, data }) => ({
            topic,
            id,
            data: data === 'poison' ? { n: 1n } : data,
          })),
        };
      },
    };
    const { base, comet } = await serve({ broker, logger: () => {} });
    const { cursors } = (await post(base, poll(['chat']))).body;
    await comet.publish('chat', 'poison');
    await comet.publish('chat', 'after');
    const answer = await post(base, poll(['chat'], cursors));
    expect(answer.status).toBe(200);
    expect(answer.body.messages?.map((message) => message.data)).toEqual(['after']);
    await memory.close();
  });
});

describe('the byte budget of answers', () => {
  const budget = 50_000;
  const fill = async (comet: { publish(topic: string, data: unknown): Promise<string> }) => {
    for (const topic of ['a', 'b']) {
      for (let index = 0; index < 30; index += 1)
        await comet.publish(topic, `${index}:${'x'.repeat(9_990)}`);
    }
  };
  const size = (answer: Answer) => JSON.stringify(answer.body).length;

  it('cuts a long-poll answer at maxAnswerBytes; the client catches up in order, losing nothing', async () => {
    const { comet, base } = await serve({ maxAnswerBytes: budget });
    let { cursors } = (await post(base, poll(['a', 'b']))).body;
    await fill(comet);
    const got: string[] = [];
    for (let round = 0; round < 50; round += 1) {
      const answer = await post(base, poll(['a', 'b'], cursors, 0));
      if (!answer.body.messages) break;
      // At most the budget plus one message (the first always goes in).
      expect(size(answer)).toBeLessThanOrEqual(budget + 10_100);
      for (const message of answer.body.messages)
        got.push(`${message.topic}${String(message.data).split(':')[0]}`);
      cursors = answer.body.cursors;
    }
    const expected = ['a', 'b'].flatMap((topic) =>
      Array.from({ length: 30 }, (_, index) => `${topic}${index}`),
    );
    expect(got).toEqual(expected);
  });

  it('bounds every WebSocket messages frame by the budget and delivers the whole history', async () => {
    const { comet, base, wsUrl } = await wsServer({ maxAnswerBytes: budget });
    const { cursors } = (await post(base, poll(['a', 'b']))).body;
    await fill(comet);
    const client = await wsClient(wsUrl);
    client.send({ type: 'poll', v: 1, sessionGuid: 's', topics: ['a', 'b'], cursors });
    const count = () =>
      client.frames.reduce(
        (sum, frame) => sum + ((frame.messages as unknown[] | undefined)?.length ?? 0),
        0,
      );
    await expect.poll(count).toBe(60);
    const batches = client.frames.filter((frame) => frame.type === 'messages');
    expect(batches.length).toBeGreaterThan(5);
    for (const frame of batches)
      expect(JSON.stringify(frame).length).toBeLessThanOrEqual(budget + 10_200);
  });
});

describe('sends in flight per WebSocket', () => {
  it('runs at most maxSendsInFlight onSend at once and nacks the rest rate_limited', async () => {
    let running = 0;
    let most = 0;
    let release: () => void = () => {};
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const { wsUrl } = await wsServer({
      maxSendsInFlight: 4,
      onSend: async ({ topic, data, publish }) => {
        running += 1;
        most = Math.max(most, running);
        await gate;
        running -= 1;
        return publish(topic, data);
      },
    });
    const client = await wsClient(wsUrl);
    for (let index = 0; index < 200; index += 1)
      client.send({ type: 'send', topic: 'chat', id: `u${index}`, data: index });
    await expect
      .poll(() => client.frames.filter((frame) => frame.type === 'nack').length)
      .toBe(196);
    expect(most).toBe(4);
    expect(client.frames[0]).toMatchObject({ type: 'nack', error: { code: 'rate_limited' } });
    release();
    await expect.poll(() => client.frames.filter((frame) => frame.type === 'ack').length).toBe(4);
  });

  it('answers repeats of a pending send id from the first, without running the send again', async () => {
    let runs = 0;
    let release: () => void = () => {};
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const { comet, wsUrl } = await wsServer({
      onSend: async ({ topic, data, publish }) => {
        runs += 1;
        await gate;
        return publish(topic, data);
      },
    });
    const client = await wsClient(wsUrl);
    for (let index = 0; index < 20; index += 1) {
      client.send({ type: 'send', topic: 'chat', id: 'same', data: 1 });
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(runs).toBe(1);
    release();
    await expect.poll(() => client.frames.filter((frame) => frame.type === 'ack').length).toBe(20);
    expect(new Set(client.frames.map((frame) => frame.messageId)).size).toBe(1);
    expect((await comet.recent('chat')).messages).toHaveLength(1);
  });
});

describe('close() with a deadline, hooks time-boxed', () => {
  it('stops waiting for a body that arrives slowly when it drains', async () => {
    const comet = createCometServer();
    const { createServer } = await import('node:http');
    const server = createServer((req, res) => comet.handle(req, res));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as { port: number }).port;
    const req = request({
      port,
      host: '127.0.0.1',
      path: '/api/comet',
      method: 'POST',
      headers: { 'content-type': 'application/json', 'content-length': '1000' },
    });
    const status = new Promise<number>((resolve) => {
      req.on('response', (res) => resolve(res.statusCode ?? 0));
      req.on('error', () => resolve(0));
    });
    req.write('{');
    const drip = setInterval(() => req.write(' '), 100);
    await new Promise((resolve) => setTimeout(resolve, 150));
    // Without the body read being stopped, close() would wait for the whole body.
    await comet.close({ timeout: 60_000 });
    clearInterval(drip);
    expect(await status).toBe(503);
    req.destroy();
    server.close();
  });

  it('ends what is left after its timeout: a hook that never answers does not hold close()', async () => {
    const never = new Promise<boolean>(() => {});
    const comet = createCometServer({ authorize: () => never, hookTimeout: 60_000 });
    const { createServer } = await import('node:http');
    const server = createServer((req, res) => comet.handle(req, res));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const base = `http://127.0.0.1:${(server.address() as { port: number }).port}/api/comet`;
    const answer = post(base, poll(['a'])).catch(() => undefined);
    await expect.poll(() => comet.stats().inFlight).toBe(1);
    await comet.close({ timeout: 100 });
    // The request was cut off, not left open.
    expect(await answer).toBeUndefined();
    server.close();
  });

  it('answers 503 with Retry-After when authorize or onSend takes longer than hookTimeout', async () => {
    const { base } = await serve({
      hookTimeout: 50,
      authorize: ({ topic }) => (topic === 'slow' ? new Promise(() => {}) : true),
      onSend: () => new Promise(() => {}),
      logger: () => {},
    });
    const polled = await post(base, poll(['slow']));
    expect(polled.status).toBe(503);
    expect(polled.body.error?.code).toBe('unavailable');
    expect(polled.headers.get('retry-after')).toBe('1');
    const sent = await post(`${base}/chat`, { v: 1, sessionGuid: 's', id: 'x', data: 1 });
    expect(sent.status).toBe(503);
  });
});

describe('options and holds per session', () => {
  it('refuses cors origins "*" with credentials, and retryAfter 0', () => {
    expect(() => createCometServer({ cors: { origins: '*', credentials: true } })).toThrow(
      /credentials/,
    );
    expect(() => createCometServer({ retryAfter: 0 })).toThrow(/retryAfter/);
    expect(() => createCometServer({ cors: { origins: '*' } })).not.toThrow();
  });

  it('answers 429 with Retry-After to a session holding more than maxHeldPerSession polls', async () => {
    const { comet, base } = await serve({ maxHeldPerSession: 3 });
    const { cursors } = (await post(base, poll(['a']))).body;
    const controllers = Array.from({ length: 3 }, () => new AbortController());
    const held = controllers.map((controller) =>
      post(base, poll(['a'], cursors), { signal: controller.signal }).catch(() => undefined),
    );
    await expect.poll(() => comet.stats().waiting).toBe(3);
    const refused = await post(base, poll(['a'], cursors));
    expect(refused.status).toBe(429);
    expect(refused.body.error?.code).toBe('rate_limited');
    expect(refused.headers.get('retry-after')).toBe('1');
    // Another session is not concerned.
    const other = { ...poll(['a'], cursors, 0), sessionGuid: 's-2' };
    expect((await post(base, other)).status).toBe(200);
    // A hold that ends makes room.
    controllers[0]?.abort();
    await expect.poll(() => comet.stats().waiting).toBe(2);
    expect((await post(base, poll(['a'], cursors, 0))).status).toBe(200);
    for (const controller of controllers) controller.abort();
    await Promise.all(held);
  });
});

// Keeps the import used when a helper above changes.
void CometServerError;
