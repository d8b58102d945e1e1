import { startServer } from '@cometkit/test-utils';
import { afterEach, describe, expect, it } from 'vitest';
import { createCometServer } from '../src/index';
import { poll, post, serve, stopAll } from './helpers';

afterEach(stopAll);

const KEY = 'test-key-0123456789abcdef';
const auth = { authorization: `Bearer ${KEY}` };

describe('HTTP publish API', () => {
  it('is off unless configured: {base}/_publish answers 404', async () => {
    const { base } = await serve();
    const answer = await post(`${base}/_publish`, { topic: 'chat', data: 1 }, { headers: auth });
    expect(answer.status).toBe(404);
  });

  it('refuses a missing or wrong key with 401 and publishes nothing', async () => {
    const { comet, base } = await serve({ publishApi: { key: KEY } });
    const none = await post(`${base}/_publish`, { topic: 'chat', data: 1 });
    const wrong = await post(
      `${base}/_publish`,
      { topic: 'chat', data: 1 },
      { headers: { authorization: `Bearer ${KEY.slice(0, -1)}x` } },
    );
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toBe('Bearer');
    expect(wrong.status).toBe(401);
    expect(wrong.body.error?.code).toBe('unauthorized');
    expect((await comet.recent('chat', 10)).messages).toEqual([]);
  });

  it('publishes a message that a held poll receives, answering its message id', async () => {
    const { comet, base } = await serve({ publishApi: { key: KEY } });
    const handshake = await post(base, poll(['chat']));
    const held = post(base, poll(['chat'], handshake.body.cursors, 5000));
    await expect.poll(() => comet.stats().waiting).toBe(1);
    const answer = await post(
      `${base}/_publish`,
      { topic: 'chat', data: { text: 'from cron' } },
      { headers: auth },
    );
    expect(answer.status).toBe(200);
    expect(answer.body).toEqual({ messageId: expect.any(String) });
    expect((await held).body.messages).toEqual([
      { topic: 'chat', id: answer.body.messageId, data: { text: 'from cron' } },
    ]);
  });

  it('publishes once per id: a repeat answers the first message id', async () => {
    const { comet, base } = await serve({ publishApi: { key: KEY } });
    const body = { topic: 'chat', data: 'once', id: 'job-7' };
    const first = await post(`${base}/_publish`, body, { headers: auth });
    const again = await post(`${base}/_publish`, body, { headers: auth });
    expect(first.body).toEqual({ id: 'job-7', messageId: expect.any(String) });
    expect(again.body).toEqual(first.body);
    // The same id from code is the same publish too.
    expect(await comet.publish('chat', 'once', { id: 'job-7' })).toBe(first.body.messageId);
    expect((await comet.recent('chat', 10)).messages).toHaveLength(1);
  });

  it('publishes a batch in order and answers one result per message', async () => {
    const { comet, base } = await serve({ publishApi: { key: KEY } });
    const answer = await post(
      `${base}/_publish`,
      {
        messages: [
          { topic: 'a', data: 1, id: 'x' },
          { topic: 'b', data: 2 },
          { topic: 'a', data: 3 },
        ],
      },
      { headers: auth },
    );
    expect(answer.status).toBe(200);
    const { results } = answer.body as unknown as { results: { id?: string; messageId: string }[] };
    expect(results).toEqual([
      { id: 'x', messageId: expect.any(String) },
      { messageId: expect.any(String) },
      { messageId: expect.any(String) },
    ]);
    expect((await comet.recent('a', 10)).messages.map((m) => m.data)).toEqual([1, 3]);
    expect((await comet.recent('b', 10)).messages.map((m) => m.id)).toEqual([
      results[1]?.messageId,
    ]);
  });

  it('publishes nothing of a batch with an invalid message and names it', async () => {
    const { comet, base } = await serve({ publishApi: { key: KEY } });
    const answer = await post(
      `${base}/_publish`,
      {
        messages: [
          { topic: 'a', data: 1 },
          { topic: '_bad', data: 2 },
        ],
      },
      { headers: auth },
    );
    expect(answer.status).toBe(400);
    expect(answer.body.error?.message).toMatch(/^messages\[1\]: /);
    expect((await comet.recent('a', 10)).messages).toEqual([]);
  });

  it('bounds the batch count and the body size with 413', async () => {
    const { base } = await serve({ publishApi: { key: KEY, maxBatch: 2, bodyLimit: 200 } });
    const many = await post(
      `${base}/_publish`,
      { messages: [1, 2, 3].map((n) => ({ topic: 'a', data: n })) },
      { headers: auth },
    );
    expect(many.status).toBe(413);
    expect(many.body.error?.message).toMatch(/at most 2 messages/);
    const big = await post(
      `${base}/_publish`,
      { topic: 'a', data: 'x'.repeat(300) },
      { headers: auth },
    );
    expect(big.status).toBe(413);
    expect(big.body.error?.code).toBe('too_large');
  });

  it('answers 400 for a message without data or with a bad id, and 405 for GET', async () => {
    const { base } = await serve({ publishApi: { key: KEY } });
    const noData = await post(`${base}/_publish`, { topic: 'a' }, { headers: auth });
    expect(noData.status).toBe(400);
    expect(noData.body.error?.message).toMatch(/"data" is required/);
    const badId = await post(
      `${base}/_publish`,
      { topic: 'a', data: 1, id: '' },
      { headers: auth },
    );
    expect(badId.status).toBe(400);
    const get = await fetch(`${base}/_publish`, { headers: auth });
    expect(get.status).toBe(405);
  });

  it('asks the authorize hook, and both must pass when a key is set too', async () => {
    const { base } = await serve({
      publishApi: { key: KEY, authorize: (req) => req.headers['x-internal'] === 'yes' },
    });
    const body = { topic: 'a', data: 1 };
    expect((await post(`${base}/_publish`, body, { headers: auth })).status).toBe(401);
    const both = await post(`${base}/_publish`, body, {
      headers: { ...auth, 'x-internal': 'yes' },
    });
    expect(both.status).toBe(200);
  });

  it('serves publishHandler on another port while the base route stays closed', async () => {
    const comet = createCometServer({ publishApi: { key: KEY, route: false } });
    const publicSide = await startServer(comet);
    const handler = comet.publishHandler;
    if (!handler) throw new Error('publishHandler missing');
    const internal = await startServer({ handle: handler });
    try {
      const body = { topic: 'a', data: 1 };
      const outside = await post(`${publicSide.url}/api/comet/_publish`, body, { headers: auth });
      expect(outside.status).toBe(404);
      const inside = await post(`${internal.url}/anything`, body, { headers: auth });
      expect(inside.status).toBe(200);
      expect((await comet.recent('a', 1)).messages[0]?.id).toBe(inside.body.messageId);
    } finally {
      await internal.close();
      await publicSide.close();
    }
  });

  it('refuses options without a key or hook, and short keys', () => {
    expect(() => createCometServer({ publishApi: {} })).toThrow(/key or an authorize hook/);
    expect(() => createCometServer({ publishApi: { key: 'short' } })).toThrow(/16 characters/);
  });
});
