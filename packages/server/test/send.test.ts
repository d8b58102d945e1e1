import { afterEach, describe, expect, it } from 'vitest';
import { CometServerError } from '../src/index';
import { poll, post, serve, stopAll } from './helpers';

afterEach(stopAll);

const send = (id: string, data: unknown, extra: Record<string, unknown> = {}) => ({
  v: 1,
  sessionGuid: 's-1',
  id,
  data,
  ...extra,
});

describe('send handler', () => {
  it('publishes the data to the topic and answers the client id and message id', async () => {
    const { comet, base } = await serve();
    const answer = await post(`${base}/chat`, send('c-1', { text: 'hi' }));
    expect(answer.status).toBe(200);
    expect(answer.body).toEqual({ id: 'c-1', messageId: expect.any(String) });
    const recent = await comet.recent('chat', 10);
    expect(recent.messages).toEqual([
      { topic: 'chat', id: answer.body.messageId, data: { text: 'hi' } },
    ]);
  });

  it('decodes the topic from the path, slashes and colons included', async () => {
    const { comet, base } = await serve();
    await post(`${base}/${encodeURIComponent('room:1/a@b')}`, send('c-1', 1));
    expect((await comet.recent('room:1/a@b', 1)).messages).toHaveLength(1);
  });

  it('answers a repeated id with the first answer and publishes nothing', async () => {
    const { comet, base } = await serve();
    const first = await post(`${base}/chat`, send('same', 1));
    const again = await post(`${base}/chat`, send('same', 1));
    expect(again.body).toEqual(first.body);
    expect((await comet.recent('chat', 10)).messages).toHaveLength(1);
  });

  it('keeps the sends of guid "G:a" to topic "b" and of guid "G" to topic "a:b" apart', async () => {
    const { comet, base } = await serve();
    const one = await post(`${base}/b`, send('1', 'to b', { sessionGuid: 'G:a' }));
    const two = await post(
      `${base}/${encodeURIComponent('a:b')}`,
      send('1', 'to a:b', { sessionGuid: 'G' }),
    );
    expect(one.status).toBe(200);
    expect(two.status).toBe(200);
    expect((await comet.recent('b', 5)).messages.map((m) => m.data)).toEqual(['to b']);
    expect((await comet.recent('a:b', 5)).messages.map((m) => m.data)).toEqual(['to a:b']);
  });

  it("publishes two users' legacy sends with the same id, each once", async () => {
    const { comet, base } = await serve();
    const ann = await post(`${base}/chat`, { userId: 'ann', id: '1', data: 'from ann' });
    const bob = await post(`${base}/chat`, { userId: 'bob', id: '1', data: 'from bob' });
    const annAgain = await post(`${base}/chat`, { userId: 'ann', id: '1', data: 'from ann' });
    expect(bob.body.messageId).not.toBe(ann.body.messageId);
    expect(annAgain.body).toEqual(ann.body);
    expect((await comet.recent('chat', 5)).messages.map((m) => m.data)).toEqual([
      'from ann',
      'from bob',
    ]);
  });

  it('scopes sends by user: another user reusing a session guid and id still publishes', async () => {
    const { comet, base } = await serve();
    const ann = await post(`${base}/chat`, send('x', 'from ann', { userId: 'ann' }));
    const eve = await post(`${base}/chat`, send('x', 'from eve', { userId: 'eve' }));
    expect(eve.body.messageId).not.toBe(ann.body.messageId);
    expect((await comet.recent('chat', 5)).messages.map((m) => m.data)).toEqual([
      'from ann',
      'from eve',
    ]);
  });

  it('publishes each anonymous legacy send, with no window shared between clients', async () => {
    const { comet, base } = await serve();
    await post(`${base}/chat`, { id: '1', data: 'one client' });
    await post(`${base}/chat`, { id: '1', data: 'another' });
    expect((await comet.recent('chat', 5)).messages.map((m) => m.data)).toEqual([
      'one client',
      'another',
    ]);
  });

  it('runs onSend again for a retry, whose publishes answer the first ones without publishing', async () => {
    const calls: Array<string | undefined> = [];
    const { comet, base } = await serve({
      onSend: async ({ id, topic, data, publish }) => {
        calls.push(id);
        await publish('audit', { of: id });
        return publish(topic, data);
      },
    });
    const first = await post(`${base}/chat`, send('c-1', 'hi'));
    const retry = await post(`${base}/chat`, send('c-1', 'hi'));
    expect(retry.body).toEqual(first.body);
    expect(calls).toEqual(['c-1', 'c-1']);
    expect((await comet.recent('chat', 5)).messages.map((m) => m.data)).toEqual(['hi']);
    expect((await comet.recent('audit', 5)).messages.map((m) => m.data)).toEqual([{ of: 'c-1' }]);
  });

  it('publishes once when the same send arrives twice at the same time', async () => {
    let release: () => void = () => {};
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const { comet, base } = await serve({
      onSend: async ({ topic, data, publish }) => {
        await gate;
        return publish(topic, data);
      },
    });
    const one = post(`${base}/chat`, send('dup', 1));
    const two = post(`${base}/chat`, send('dup', 1));
    await expect.poll(() => comet.stats().inFlight).toBe(2);
    release();
    const [a, b] = await Promise.all([one, two]);
    expect(a.body).toEqual(b.body);
    expect((await comet.recent('chat', 10)).messages).toHaveLength(1);
  });

  it('wakes a held poll on the topic', async () => {
    const { comet, base } = await serve();
    const { cursors } = (await post(base, poll(['chat']))).body;
    const pending = post(base, poll(['chat'], cursors));
    await expect.poll(() => comet.stats().waiting).toBe(1);
    await post(`${base}/chat`, send('c-1', 'ping'));
    expect((await pending).body.messages?.map((m) => m.data)).toEqual(['ping']);
  });

  it('lets onSend validate, reshape and publish, and refuse with a CometServerError', async () => {
    const { comet, base } = await serve({
      onSend: ({ topic, data, publish }) => {
        const text = (data as { text?: unknown }).text;
        if (typeof text !== 'string' || text.trim().length === 0) {
          throw new CometServerError(400, 'bad_request', 'text must be 1 to 2000 characters');
        }
        return publish(topic, { text: text.trim(), sentAt: 1 });
      },
    });
    const refused = await post(`${base}/chat`, send('c-1', { text: '  ' }));
    expect(refused.status).toBe(400);
    expect(refused.body).toEqual({
      error: { code: 'bad_request', message: 'text must be 1 to 2000 characters' },
    });
    // The refusal released the id: a corrected retry with the same id goes through.
    const ok = await post(`${base}/chat`, send('c-1', { text: ' hi ' }));
    expect(ok.status).toBe(200);
    expect((await comet.recent('chat', 5)).messages.map((m) => m.data)).toEqual([
      { text: 'hi', sentAt: 1 },
    ]);
  });

  it('answers 500 internal without details when onSend fails unexpectedly', async () => {
    const logged: unknown[] = [];
    const { base } = await serve({
      onSend: () => {
        throw new Error('secret database password in this message');
      },
      logger: (event) => logged.push(event),
    });
    const answer = await post(`${base}/chat`, send('c-1', 1));
    expect(answer.status).toBe(500);
    expect(answer.body).toEqual({
      error: { code: 'internal', message: 'the server could not handle the request' },
    });
    expect(JSON.stringify(answer.body)).not.toMatch(/secret|at /);
    expect(logged).toContainEqual(expect.objectContaining({ event: 'request.failed' }));
  });

  it('answers 403 forbidden for a send the authorize hook refuses, 401 for unauthorized', async () => {
    const { comet, base } = await serve({
      authorize: ({ action, topic }) =>
        action === 'poll' ||
        (topic === 'login' ? { code: 'unauthorized', message: 'log in first' } : false),
    });
    const forbidden = await post(`${base}/chat`, send('c-1', 1));
    expect(forbidden.status).toBe(403);
    expect(forbidden.body.error?.code).toBe('forbidden');
    const unauthorized = await post(`${base}/login`, send('c-2', 1));
    expect(unauthorized.status).toBe(401);
    expect(unauthorized.body.error).toEqual({ code: 'unauthorized', message: 'log in first' });
    expect((await comet.recent('chat', 5)).messages).toHaveLength(0);
  });

  it('accepts a legacy send without v or id', async () => {
    const { base } = await serve();
    const answer = await post(`${base}/chat`, { data: 'old' });
    expect(answer.status).toBe(200);
    expect(answer.body).toEqual({ messageId: expect.any(String) });
  });

  it.each([
    ['no id', { v: 1, sessionGuid: 's', data: 1 }, /"id"/],
    ['no data', { v: 1, sessionGuid: 's', id: 'x' }, /"data"/],
    ['no sessionGuid', { v: 1, id: 'x', data: 1 }, /sessionGuid/],
    ['a version 2', { v: 2, sessionGuid: 's', id: 'x', data: 1 }, /version/],
    ['an array', [1], /object/],
  ])('answers 400 bad_request for a send with %s', async (_name, body, message) => {
    const { base } = await serve();
    const answer = await post(`${base}/chat`, body);
    expect(answer.status).toBe(400);
    expect(answer.body.error?.code).toBe('bad_request');
    expect(answer.body.error?.message).toMatch(message);
  });

  it('answers 400 for a bad topic in the path', async () => {
    const { base } = await serve();
    for (const path of ['-bad', '%E0%A4%A', 'sp%20ace']) {
      const answer = await post(`${base}/${path}`, send('x', 1));
      expect(answer.status).toBe(400);
      expect(answer.body.error?.code).toBe('bad_request');
    }
  });
});
