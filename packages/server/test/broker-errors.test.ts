import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { type Broker, createMemoryBroker } from '../src/index';
import { poll, post, serve, stopAll } from './helpers';

afterEach(stopAll);

/** What the Redis broker rejects with while Redis cannot be reached (matched by `code`). */
class FakeRedisBrokerError extends Error {
  override readonly name = 'RedisBrokerError';
  constructor(readonly code: string) {
    super(`redis: ${code}`);
  }
}

/**
 * A memory broker whose reads and publishes reject with `code` while
 * `down` is set: a stand-in for a Redis broker that lost its connection.
 */
function flakyBroker(code = 'unavailable'): { broker: Broker; state: { down: boolean } } {
  const inner = createMemoryBroker();
  const state = { down: false };
  const fail = () => Promise.reject(new FakeRedisBrokerError(code));
  const broker: Broker = {
    publish: (topic, data, options) => (state.down ? fail() : inner.publish(topic, data, options)),
    read: (topic, cursor, limit) => (state.down ? fail() : inner.read(topic, cursor, limit)),
    recent: (topic, limit) => (state.down ? fail() : inner.recent(topic, limit)),
    listen: (topics, onPublish) => inner.listen(topics, onPublish),
    close: () => inner.close(),
  };
  return { broker, state };
}

const send = { v: 1, sessionGuid: 's-1', id: 'send-1', data: 'hi' };

describe('a broker outage', () => {
  it('answers a poll 503 unavailable with Retry-After, and serves again once it is back', async () => {
    const { broker, state } = flakyBroker();
    const { base } = await serve({ broker, retryAfter: 7 });
    state.down = true;
    const answer = await post(base, poll(['chat']));
    expect(answer.status).toBe(503);
    expect(answer.headers.get('retry-after')).toBe('7');
    expect(answer.body.error?.code).toBe('unavailable');
    expect(JSON.stringify(answer.body)).not.toMatch(/redis/i);
    state.down = false;
    expect((await post(base, poll(['chat']))).status).toBe(200);
  });

  it('answers a legacy poll 503 too', async () => {
    const { broker, state } = flakyBroker();
    const { base } = await serve({ broker });
    state.down = true;
    const answer = await post(base, { topics: ['chat'], sessionGuid: 's' });
    expect(answer.status).toBe(503);
    expect(answer.headers.get('retry-after')).toBe('1');
  });

  it('answers 503 to a poll held when the broker fails on the read after a wake-up', async () => {
    const { broker, state } = flakyBroker();
    const { comet, base } = await serve({ broker });
    const { cursors } = (await post(base, poll(['chat']))).body;
    const pending = post(base, poll(['chat'], cursors));
    await expect.poll(() => comet.stats().waiting).toBe(1);
    await comet.publish('chat', 1);
    state.down = true;
    // The wake-up's read runs after this turn (coalescing), so it sees the outage.
    const answer = await pending;
    expect(answer.status).toBe(503);
    expect(answer.body.error?.code).toBe('unavailable');
  });

  it('answers a stream 503 before it opens', async () => {
    const { broker, state } = flakyBroker();
    const { base } = await serve({ broker, retryAfter: 3 });
    state.down = true;
    const answer = await post(`${base}/_stream`, poll(['chat'], {}));
    expect(answer.status).toBe(503);
    expect(answer.headers.get('retry-after')).toBe('3');
    expect(answer.headers.get('content-type')).toMatch(/application\/json/);
    expect(answer.body.error?.code).toBe('unavailable');
  });

  it('answers a send 503 with Retry-After and lets the retry publish once it is back', async () => {
    const { broker, state } = flakyBroker();
    const { comet, base } = await serve({ broker, retryAfter: 2 });
    state.down = true;
    const refused = await post(`${base}/chat`, send);
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toBe('2');
    expect(refused.body.error?.code).toBe('unavailable');
    state.down = false;
    const accepted = await post(`${base}/chat`, send);
    expect(accepted.status).toBe(200);
    expect((await comet.recent('chat')).messages.map((m) => m.data)).toEqual(['hi']);
  });

  it('still answers 500 internal for other broker errors', async () => {
    const { broker, state } = flakyBroker('corrupt');
    const { base } = await serve({ broker });
    state.down = true;
    const answer = await post(base, poll(['chat']));
    expect(answer.status).toBe(500);
    expect(answer.headers.get('retry-after')).toBeNull();
    expect(answer.body.error?.code).toBe('internal');
  });

  it('nacks a WebSocket send with unavailable and keeps the socket open', async () => {
    const { broker, state } = flakyBroker();
    const { url } = await serve({ broker });
    const ws = new WebSocket(`${url.replace('http', 'ws')}/api/comet/_ws`);
    try {
      await new Promise((resolve, reject) => {
        ws.once('open', resolve);
        ws.once('error', reject);
      });
      const frames: Record<string, unknown>[] = [];
      ws.on('message', (data) => frames.push(JSON.parse(data.toString())));
      state.down = true;
      ws.send(JSON.stringify({ type: 'send', topic: 'chat', id: 'w-1', data: 1 }));
      await expect.poll(() => frames.length).toBe(1);
      expect(frames[0]).toEqual({
        type: 'nack',
        id: 'w-1',
        error: { code: 'unavailable', message: expect.any(String) },
        // The server's `retryAfter` option, as `Retry-After` on an HTTP 503.
        retryAfter: 1,
      });
      state.down = false;
      ws.send(JSON.stringify({ type: 'send', topic: 'chat', id: 'w-1', data: 1 }));
      await expect.poll(() => frames.length).toBe(2);
      expect(frames[1]).toMatchObject({ type: 'ack', id: 'w-1' });
    } finally {
      ws.terminate();
    }
  });

  it('closes a WebSocket whose subscription hits the outage with 1012 (reconnect)', async () => {
    const { broker, state } = flakyBroker();
    const { url } = await serve({ broker });
    const ws = new WebSocket(`${url.replace('http', 'ws')}/api/comet/_ws`);
    try {
      await new Promise((resolve, reject) => {
        ws.once('open', resolve);
        ws.once('error', reject);
      });
      const closed = new Promise<number>((resolve) => ws.once('close', resolve));
      state.down = true;
      ws.send(JSON.stringify({ type: 'poll', v: 1, sessionGuid: 's', topics: ['chat'] }));
      expect(await closed).toBe(1012);
    } finally {
      ws.terminate();
    }
  });
});
