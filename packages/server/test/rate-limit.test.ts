import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { createRateLimiter } from '../src/rate-limit';
import { poll, post, serve, stopAll } from './helpers';

const sockets: WebSocket[] = [];
afterEach(async () => {
  for (const ws of sockets.splice(0)) ws.terminate();
  await stopAll();
});

const KEY = 'test-key-0123456789abcdef';
const send = (id: string, sessionGuid = 's-1') => ({ v: 1, sessionGuid, id, data: id });

/** `Retry-After` as a number of seconds, checked to be a whole number >= 1. */
function retryAfter(headers: Headers): number {
  const value = headers.get('retry-after');
  expect(value).toMatch(/^\d+$/);
  const seconds = Number(value);
  expect(seconds).toBeGreaterThanOrEqual(1);
  return seconds;
}

/** Opens a WebSocket and collects its frames. */
async function socket(url: string) {
  const ws = new WebSocket(url.replace(/^http/, 'ws'));
  sockets.push(ws);
  const frames: Array<Record<string, unknown>> = [];
  ws.on('message', (data) => frames.push(JSON.parse(data.toString())));
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  return { ws, frames, send: (frame: unknown) => ws.send(JSON.stringify(frame)) };
}

describe('rate limits', () => {
  it('answers 429 with Retry-After once a client passes its request limit, per session', async () => {
    const { base } = await serve({ rateLimit: { requests: { points: 2, duration: 30 } } });
    expect((await post(base, poll(['chat']))).status).toBe(200);
    expect((await post(base, poll(['chat']))).status).toBe(200);
    const limited = await post(base, poll(['chat']));
    expect(limited.status).toBe(429);
    expect(limited.body.error?.code).toBe('rate_limited');
    expect(retryAfter(limited.headers)).toBeLessThanOrEqual(30);
    // Another tab (another sessionGuid) has its own count.
    expect((await post(base, { ...poll(['chat']), sessionGuid: 's-2' })).status).toBe(200);
  });

  it('counts a verified identity across its sessions, by default', async () => {
    const { base } = await serve({
      identify: (req) => (req.headers['x-user'] as string | undefined) ?? undefined,
      rateLimit: { requests: { points: 2, duration: 30 } },
    });
    const as = (user: string, session: string) =>
      post(base, { ...poll(['chat']), sessionGuid: session }, { headers: { 'x-user': user } });
    expect((await as('ann', 'tab-1')).status).toBe(200);
    expect((await as('ann', 'tab-2')).status).toBe(200);
    // A third tab of the same user is over her limit; another user is not.
    expect((await as('ann', 'tab-3')).status).toBe(429);
    expect((await as('bob', 'tab-1')).status).toBe(200);
  });

  it('counts stream opens as requests', async () => {
    const { base } = await serve({ rateLimit: { requests: { points: 1, duration: 30 } } });
    expect((await post(base, poll(['chat']))).status).toBe(200);
    const stream = await post(`${base}/_stream`, poll(['chat']));
    expect(stream.status).toBe(429);
    retryAfter(stream.headers);
  });

  it('limits sends per client with 429 and Retry-After, and publishes nothing more', async () => {
    const { comet, base } = await serve({ rateLimit: { sends: { points: 2, duration: 30 } } });
    expect((await post(`${base}/chat`, send('a'))).status).toBe(200);
    expect((await post(`${base}/chat`, send('b'))).status).toBe(200);
    const limited = await post(`${base}/chat`, send('c'));
    expect(limited.status).toBe(429);
    retryAfter(limited.headers);
    expect((await comet.recent('chat', 10)).messages.map((m) => m.data)).toEqual(['a', 'b']);
  });

  it('limits publishes per topic, from sends and the publish API alike', async () => {
    const { comet, base } = await serve({
      publishApi: { key: KEY },
      rateLimit: { publishes: { points: 2, duration: 30 } },
    });
    expect((await post(`${base}/chat`, send('a', 's-1'))).status).toBe(200);
    expect((await post(`${base}/chat`, send('b', 's-2'))).status).toBe(200);
    const api = await post(
      `${base}/_publish`,
      { topic: 'chat', data: 'c' },
      { headers: { authorization: `Bearer ${KEY}` } },
    );
    expect(api.status).toBe(429);
    retryAfter(api.headers);
    // Another topic has its own count; the server's own code is not limited.
    expect((await post(`${base}/news`, send('d'))).status).toBe(200);
    await comet.publish('chat', 'from code');
    expect((await comet.recent('chat', 10)).messages.map((m) => m.data)).toEqual([
      'a',
      'b',
      'from code',
    ]);
  });

  it('answers a WebSocket send over the limit with a rate_limited nack and retryAfter', async () => {
    const { url } = await serve({ rateLimit: { sends: { points: 1, duration: 30 } } });
    const client = await socket(`${url}/api/comet/_ws`);
    client.send({ type: 'send', topic: 'chat', id: 'a', data: 1, sessionGuid: 's-9' });
    client.send({ type: 'send', topic: 'chat', id: 'b', data: 2, sessionGuid: 's-9' });
    await expect.poll(() => client.frames.length).toBe(2);
    // The two sends run at once: one gets the point, the other the nack.
    const [ack, nack] = [...client.frames].sort((x, y) =>
      String(x.type).localeCompare(String(y.type)),
    );
    expect(ack).toMatchObject({ type: 'ack' });
    expect(nack).toMatchObject({
      type: 'nack',
      error: { code: 'rate_limited' },
      retryAfter: expect.any(Number),
    });
    expect(nack?.retryAfter).toBeGreaterThanOrEqual(1);
    expect([ack?.id, nack?.id].sort()).toEqual(['a', 'b']);
  });

  it('refuses a WebSocket poll frame over the request limit with a rate_limited error', async () => {
    const { url } = await serve({ rateLimit: { requests: { points: 1, duration: 30 } } });
    const client = await socket(`${url}/api/comet/_ws`);
    client.send({ type: 'poll', ...poll(['chat']) });
    await expect.poll(() => client.frames.length).toBe(1);
    expect(client.frames[0]).toMatchObject({ type: 'open' });
    client.send({ type: 'poll', ...poll(['chat', 'news']) });
    await expect.poll(() => client.frames.length).toBe(2);
    expect(client.frames[1]).toMatchObject({
      type: 'error',
      error: { code: 'rate_limited' },
      retryAfter: expect.any(Number),
    });
  });

  it('allows the request and logs when the store fails', async () => {
    const events: string[] = [];
    const failing = {
      // rate-limiter-flexible calls these on a Redis client; each fails as a dead Redis would.
      rlflxIncr: () => Promise.reject(new Error('connection lost')),
      eval: () => Promise.reject(new Error('connection lost')),
      evalsha: () => Promise.reject(new Error('connection lost')),
      defineCommand() {},
      multi() {
        throw new Error('connection lost');
      },
      status: 'ready',
    };
    const limiter = createRateLimiter(
      { requests: { points: 1, duration: 30 }, redis: failing },
      (event) => events.push(event.event),
    );
    const context = {
      req: { socket: {} } as never,
      sessionGuid: 's',
      userId: undefined,
      identity: undefined,
    };
    await limiter?.request(context);
    await limiter?.request(context);
    expect(events).toEqual(['ratelimit.failed', 'ratelimit.failed']);
  });

  it('refuses rules that are not whole numbers of points and seconds', () => {
    expect(() => createRateLimiter({ sends: { points: 0, duration: 1 } }, () => {})).toThrow(
      /rateLimit.sends/,
    );
    expect(() => createRateLimiter({ requests: { points: 5, duration: 0.5 } }, () => {})).toThrow(
      /rateLimit.requests/,
    );
  });
});
