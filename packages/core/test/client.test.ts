import { createFakeBackend } from '@cometkit/test-utils';
import { HttpResponse } from 'msw';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { createCometClient } from '../src/client';
import {
  ClosedError,
  type CometError,
  isClosedError,
  isHttpError,
  isProtocolError,
  isTimeoutError,
  isTopicError,
} from '../src/errors';
import type { AuthContext, CometClientOptions } from '../src/options';
import type { CometClient, Diagnostic } from '../src/types';
import { createClock, createOnline } from './helpers';

const net = createFakeBackend({ mode: 'scripted', listen: false });
const BASE = net.url;
let clock: ReturnType<typeof createClock>;
let online: ReturnType<typeof createOnline>;
let clients: CometClient[] = [];
let diagnostics: Diagnostic[] = [];

beforeAll(() => net.server.listen({ onUnhandledRequest: 'error' }));
afterAll(() => net.server.close());
beforeEach(() => {
  clock = createClock();
  online = createOnline(true);
  diagnostics = [];
});
afterEach(() => {
  for (const c of clients) c.close();
  clients = [];
  net.reset();
  net.server.resetHandlers();
});

function make(options: CometClientOptions = {}) {
  let uuid = 0;
  const client = createCometClient({
    url: BASE,
    idleGrace: 100,
    // The long-poll client's behaviour; the other transports have their own test file.
    transports: ['longpoll'],
    ...options,
    environment: {
      setTimeout: clock.setTimeout,
      clearTimeout: clock.clearTimeout,
      now: clock.now,
      random: () => 0.5,
      online: online.source,
      randomUUID: () => `uuid-${++uuid}`,
      ...options.environment,
    },
  });
  client.on('diagnostic', (d) => diagnostics.push(d));
  clients.push(client);
  return client;
}

const pollCount = (n: number) => vi.waitFor(() => expect(net.polls.length).toBe(n));
const codes = () => diagnostics.map((d) => d.code);

describe('polling', () => {
  it('starts polling on the first subscription with a v1 request', async () => {
    const client = make({ userId: 'ann' });
    expect(client.getState()).toEqual({ status: 'idle' });
    client.subscribe('chat', () => {});
    await pollCount(1);
    expect(net.polls[0]?.body).toEqual({
      v: 1,
      sessionGuid: client.sessionGuid,
      userId: 'ann',
      topics: ['chat'],
      wait: 25_000,
    });
    expect(client.getState()).toEqual({ status: 'connecting', transport: 'longpoll', attempt: 0 });
    net.last().respond(200, { cursors: { chat: '5' } });
    await vi.waitFor(() => expect(client.getState().status).toBe('connected'));
  });

  it('delivers messages with topic and id, then sends the updated cursors', async () => {
    const client = make();
    const got: unknown[] = [];
    client.subscribe('chat', (data, message) => got.push([data, message.topic, message.id]));
    await pollCount(1);
    net.last().respond(200, {
      messages: [
        { topic: 'chat', id: '6', data: 'a' },
        { topic: 'chat', id: '7', data: 'b' },
      ],
      cursors: { chat: '7' },
    });
    await pollCount(2);
    expect(got).toEqual([
      ['a', 'chat', '6'],
      ['b', 'chat', '7'],
    ]);
    expect(net.polls[1]?.body.cursors).toEqual({ chat: '7' });
  });

  it('polls again on a 0 ms timer after an answer with repollAfterTurn (the Node entry)', async () => {
    const zero: string[] = [];
    const client = make({
      environment: {
        repollAfterTurn: true,
        setTimeout: (fn: () => void, ms: number) => {
          if (ms === 0) zero.push(net.polls.length === 1 ? 'after the first answer' : 'later');
          return clock.setTimeout(fn, ms);
        },
      },
    });
    const got: unknown[] = [];
    client.subscribe('chat', (data) => got.push([data, net.polls.length]));
    await pollCount(1);
    net.last().respond(200, { messages: [{ topic: 'chat', id: '1', data: 'a' }] });
    await pollCount(2);
    // Delivered before the next poll was made, which waited for a 0 ms timer.
    expect(got).toEqual([['a', 1]]);
    expect(zero[0]).toBe('after the first answer');
  });

  it('drops a message whose id was already delivered', async () => {
    const client = make();
    const got: unknown[] = [];
    client.subscribe('chat', (data) => got.push(data));
    await pollCount(1);
    net.last().respond(200, { messages: [{ topic: 'chat', id: '1', data: 'a' }] });
    await pollCount(2);
    net.last().respond(200, {
      messages: [
        { topic: 'chat', id: '1', data: 'a' },
        { topic: 'chat', id: '2', data: 'b' },
      ],
    });
    await pollCount(3);
    expect(got).toEqual(['a', 'b']);
    expect(codes()).toContain('duplicate-dropped');
  });

  it('remembers at least the last 256 ids of a topic, however many came since', async () => {
    const client = make();
    const got: string[] = [];
    client.subscribe('chat', (_data, message) => got.push(message.id as string));
    await pollCount(1);
    const ids = (from: number, to: number) =>
      Array.from({ length: to - from }, (_, index) => String(from + index));
    net.last().respond(200, {
      messages: ids(0, 1000).map((id) => ({ topic: 'chat', id, data: id })),
    });
    await pollCount(2);
    // The last 256 come again (a server that lost its place), then new ones.
    net.last().respond(200, {
      messages: ids(744, 1010).map((id) => ({ topic: 'chat', id, data: id })),
    });
    await pollCount(3);
    expect(got).toEqual(ids(0, 1010));
  });

  it('raises reset for a topic the server lost the history of and continues from its position', async () => {
    const client = make();
    const resets: unknown[] = [];
    client.on('reset', (e) => resets.push(e));
    client.subscribe('chat', () => {}, { cursor: 'old' });
    await pollCount(1);
    expect(net.polls[0]?.body.cursors).toEqual({ chat: 'old' });
    net.last().respond(200, { resets: ['chat'], cursors: { chat: 'new' } });
    await pollCount(2);
    expect(resets).toEqual([{ topic: 'chat', cursor: 'old', position: 'new' }]);
    expect(net.polls[1]?.body.cursors).toEqual({ chat: 'new' });
  });

  it('tells the position a handshake gives, before any message (what sharing tabs hand over)', async () => {
    const client = make();
    const positions: unknown[] = [];
    client.on('position', (e) => positions.push(e));
    client.subscribe('chat', () => {});
    await pollCount(1);
    net.last().respond(200, { cursors: { chat: 'c0' } });
    await pollCount(2);
    expect(positions).toEqual([{ topic: 'chat', cursor: 'c0' }]);
  });

  it('drops only the topic the server refused', async () => {
    const client = make();
    const errors: CometError[] = [];
    client.on('error', (e) => errors.push(e));
    client.subscribe(['chat', 'secret'], () => {});
    await pollCount(1);
    net.last().respond(200, {
      cursors: { chat: '1' },
      errors: { secret: { code: 'forbidden', message: 'not yours' } },
    });
    await pollCount(2);
    expect(net.polls[1]?.body.topics).toEqual(['chat']);
    expect(isTopicError(errors[0])).toBe(true);
    expect(errors[0]).toMatchObject({ topic: 'secret', code: 'forbidden' });
  });

  it('asks the auth hook once for a topic refused as unauthorized, and polls it again from its cursor with the fresh headers', async () => {
    let fresh = 0;
    const auth = vi.fn(async (_context: AuthContext) => ({
      authorization: `Bearer fresh-${++fresh}`,
    }));
    const client = make({ headers: { authorization: 'Bearer old' }, auth });
    const got: unknown[] = [];
    const errors: CometError[] = [];
    client.on('error', (e) => errors.push(e));
    client.subscribe(['chat', 'user:ann'], (data) => got.push(data));
    await pollCount(1);
    net.last().respond(200, {
      messages: [{ topic: 'user:ann', id: '4', data: 'a' }],
      cursors: { chat: '1', 'user:ann': '4' },
    });
    await pollCount(2);
    net.last().respond(200, {
      cursors: { chat: '1' },
      errors: { 'user:ann': { code: 'unauthorized', message: 'token expired' } },
    });
    await pollCount(3);
    expect(auth).toHaveBeenCalledTimes(1);
    expect(auth.mock.calls[0]?.[0]).toMatchObject({ topic: 'user:ann', error: { status: 401 } });
    expect(net.polls[2]?.headers.get('authorization')).toBe('Bearer fresh-1');
    expect(net.polls[2]?.body.topics).toEqual(['chat', 'user:ann']);
    expect(net.polls[2]?.body.cursors).toEqual({ chat: '1', 'user:ann': '4' });
    expect(errors).toEqual([]);
    net.last().respond(200, {
      messages: [{ topic: 'user:ann', id: '5', data: 'b' }],
      cursors: { chat: '1', 'user:ann': '5' },
    });
    await pollCount(4);
    expect(got).toEqual(['a', 'b']);
    // Accepted in between: a later expiry asks again.
    net.last().respond(200, {
      cursors: { chat: '1' },
      errors: { 'user:ann': { code: 'unauthorized', message: 'token expired' } },
    });
    await pollCount(5);
    expect(auth).toHaveBeenCalledTimes(2);
    expect(net.polls[4]?.headers.get('authorization')).toBe('Bearer fresh-2');
  });

  it('drops a topic refused again right after a refresh, without asking the hook twice', async () => {
    const auth = vi.fn(() => ({ authorization: 'Bearer fresh' }));
    const client = make({ auth });
    const errors: CometError[] = [];
    client.on('error', (e) => errors.push(e));
    client.subscribe(['chat', 'secret'], () => {});
    await pollCount(1);
    const refusal = { code: 'forbidden', message: 'not yours' };
    net.last().respond(200, { cursors: { chat: '1' }, errors: { secret: refusal } });
    await pollCount(2);
    expect(net.polls[1]?.body.topics).toEqual(['chat', 'secret']);
    net.last().respond(200, { cursors: { chat: '1' }, errors: { secret: refusal } });
    await pollCount(3);
    expect(net.polls[2]?.body.topics).toEqual(['chat']);
    expect(auth).toHaveBeenCalledTimes(1);
    expect(errors[0]).toMatchObject({ topic: 'secret', code: 'forbidden' });
  });

  it('drops the refused topic when the auth hook gives nothing', async () => {
    const client = make({ auth: () => undefined });
    const errors: CometError[] = [];
    client.on('error', (e) => errors.push(e));
    client.subscribe(['chat', 'secret'], () => {});
    await pollCount(1);
    net.last().respond(200, {
      cursors: { chat: '1' },
      errors: { secret: { code: 'unauthorized', message: 'expired' } },
    });
    await pollCount(2);
    expect(net.polls[1]?.body.topics).toEqual(['chat']);
    expect(errors[0]).toMatchObject({ topic: 'secret', code: 'unauthorized' });
  });

  it('aborts a held poll and polls again once per tick when the topic set changes', async () => {
    const client = make();
    client.subscribe('a', () => {});
    await pollCount(1);
    client.subscribe('b', () => {});
    client.subscribe('c', () => {});
    const off = client.subscribe('d', () => {});
    off();
    await pollCount(2);
    await vi.waitFor(() => expect(net.polls[0]?.aborted).toBe(true));
    expect(net.polls[1]?.body.topics).toEqual(['a', 'b', 'c']);
    await new Promise((r) => setTimeout(r, 20));
    expect(net.polls).toHaveLength(2);
  });

  it('stops after the idle grace once the last subscription leaves, aborting the poll', async () => {
    const client = make();
    const off = client.subscribe('chat', () => {});
    await pollCount(1);
    off();
    await vi.waitFor(() => expect(clock.pending()).toContain(100));
    expect(net.polls[0]?.aborted).toBe(false);
    clock.advance(100);
    expect(client.getState()).toEqual({ status: 'idle' });
    await vi.waitFor(() => expect(net.polls[0]?.aborted).toBe(true));
  });

  it('keeps the poll when a subscription comes back within the grace (StrictMode)', async () => {
    const client = make();
    client.subscribe('chat', () => {})();
    client.subscribe('chat', () => {});
    await pollCount(1);
    const off = client.subscribe('x', () => {});
    await pollCount(2);
    off();
    client.subscribe('x', () => {});
    await new Promise((r) => setTimeout(r, 20));
    expect(net.polls).toHaveLength(2);
    expect(net.polls[1]?.aborted).toBe(false);
  });

  it('polls again at once after {"reconnect": true} with the cursors kept', async () => {
    const client = make();
    client.subscribe('chat', () => {});
    await pollCount(1);
    net.last().respond(200, { cursors: { chat: '3' } });
    await pollCount(2);
    clock.advance(25_000);
    net.last().respond(200, { reconnect: true, cursors: { chat: '3' } });
    await pollCount(3);
    expect(net.polls[2]?.body.cursors).toEqual({ chat: '3' });
    expect(client.getState().status).toBe('connected');
  });
});

describe('rewind and persisted cursors', () => {
  /** A session storage in memory, shared by the clients of one test (one tab). */
  function tab() {
    const items = new Map<string, string>();
    return {
      getItem: (key: string) => items.get(key) ?? null,
      setItem: (key: string, value: string) => void items.set(key, value),
    };
  }

  it('asks for a rewind until the topic has a position, and never for a topic with a cursor', async () => {
    const client = make();
    const got: unknown[] = [];
    client.subscribe('chat', (data) => got.push(data), { rewind: 50, since: 60_000 });
    client.subscribe('news', () => {}, { rewind: 5, cursor: 'n1' });
    await pollCount(1);
    expect(net.polls[0]?.body.rewind).toEqual({ chat: { count: 50, since: 60_000 } });
    net.last().respond(200, {
      messages: [
        { topic: 'chat', id: '8', data: 'a' },
        { topic: 'chat', id: '9', data: 'b' },
      ],
      cursors: { chat: '9', news: 'n1' },
    });
    await pollCount(2);
    expect(got).toEqual(['a', 'b']);
    expect(net.polls[1]?.body.rewind).toBeUndefined();
    expect(net.polls[1]?.body.cursors).toEqual({ chat: '9', news: 'n1' });
  });

  it('rewinds again after a failure before the first answer', async () => {
    const client = make();
    client.subscribe('chat', () => {}, { rewind: 3 });
    await pollCount(1);
    net.last().respond(503, { error: { code: 'unavailable', message: 'x' } });
    await vi.waitFor(() => expect(client.getState().status).toBe('reconnecting'));
    clock.advance(60_000);
    await pollCount(2);
    expect(net.polls[1]?.body.rewind).toEqual({ chat: { count: 3 } });
  });

  it('rejects a rewind or since that is not a positive integer', () => {
    const client = make();
    for (const options of [{ rewind: 0 }, { rewind: 1.5 }, { since: -1 }]) {
      expect(() => client.subscribe('chat', () => {}, options)).toThrow(/positive integer/);
    }
  });

  it('continues after a reload from the cursor saved in the tab, before any rewind', async () => {
    const sessionStorage = tab();
    const first = make({
      persistCursors: true,
      environment: { sessionStorage: () => sessionStorage },
    });
    first.subscribe('chat', () => {}, { rewind: 10 });
    await pollCount(1);
    net.last().respond(200, {
      messages: [{ topic: 'chat', id: '41', data: 'x' }],
      cursors: { chat: '41' },
    });
    await pollCount(2);
    first.close();
    // The page reloads: a new client in the same tab.
    const second = make({
      persistCursors: true,
      environment: { sessionStorage: () => sessionStorage },
    });
    second.subscribe('chat', () => {});
    await pollCount(3);
    expect(net.polls[2]?.body.cursors).toEqual({ chat: '41' });
    expect(net.polls[2]?.body.rewind).toBeUndefined();
  });

  it('saves nothing without persistCursors, and survives a storage that throws', async () => {
    const sessionStorage = tab();
    const client = make({ environment: { sessionStorage: () => sessionStorage } });
    client.subscribe('chat', () => {});
    await pollCount(1);
    net.last().respond(200, { cursors: { chat: '1' } });
    await pollCount(2);
    expect(sessionStorage.getItem(`cometkit:cursors:${BASE}`)).toBeNull();
    const broken = {
      getItem: () => {
        throw new Error('denied');
      },
      setItem: () => {
        throw new Error('full');
      },
    };
    const other = make({ persistCursors: true, environment: { sessionStorage: () => broken } });
    const got: unknown[] = [];
    other.subscribe('news', (data) => got.push(data));
    await pollCount(3);
    net
      .last()
      .respond(200, { messages: [{ topic: 'news', id: '2', data: 'ok' }], cursors: { news: '2' } });
    await vi.waitFor(() => expect(got).toEqual(['ok']));
  });
});

describe('proxy timeouts and the adaptive hold', () => {
  it('polls again at once after a 408', async () => {
    const client = make();
    client.subscribe('chat', () => {});
    await pollCount(1);
    net.last().respond(200, { cursors: { chat: '1' } });
    await pollCount(2);
    clock.advance(25_000);
    net.last().respondText(408, 'Request Timeout');
    await pollCount(3);
    expect(net.polls[2]?.body.cursors).toEqual({ chat: '1' });
    expect(codes()).toContain('proxy-timeout');
  });

  it('backs off when 504s repeat quickly', async () => {
    const client = make();
    client.subscribe('chat', () => {});
    for (let i = 1; i <= 3; i++) {
      await pollCount(i);
      net.last().respondText(504, 'Gateway Timeout');
    }
    await vi.waitFor(() => expect(codes()).toContain('fast-repoll-backoff'));
    expect(net.polls).toHaveLength(3);
    clock.advance(250);
    await pollCount(4);
  });

  it('lowers wait below a 504 that cuts a poll held about T ms, for the rest of the session', async () => {
    const client = make();
    client.subscribe('chat', () => {});
    await pollCount(1);
    net.last().respond(200, {});
    await pollCount(2);
    clock.advance(10_000);
    net.last().respondText(504, '');
    await pollCount(3);
    expect(net.polls[2]?.body.wait).toBe(8000);
    expect(diagnostics.find((d) => d.code === 'wait-lowered')?.detail).toMatchObject({
      heldMs: 10_000,
      wait: 8000,
    });
  });

  it('never lowers wait under 5 s', async () => {
    const client = make();
    client.subscribe('chat', () => {});
    await pollCount(1);
    clock.advance(3000);
    net.last().respondText(408, '');
    await pollCount(2);
    expect(net.polls[1]?.body.wait).toBe(5000);
  });
});

describe('failures', () => {
  it('aborts and retries a poll unanswered after wait + grace (watchdog)', async () => {
    const client = make({ wait: 1000, watchdogGrace: 500 });
    client.subscribe('chat', () => {});
    await pollCount(1);
    clock.advance(1500);
    const state = client.getState();
    expect(state.status).toBe('reconnecting');
    if (state.status === 'reconnecting') expect(isTimeoutError(state.error)).toBe(true);
    expect(codes()).toContain('watchdog-timeout');
    await vi.waitFor(() => expect(net.polls[0]?.aborted).toBe(true));
    clock.advance(250);
    await pollCount(2);
  });

  it('backs off with full jitter on network errors and 5xx, and resets after a success', async () => {
    const client = make();
    const states: unknown[] = [];
    client.subscribeState((s) =>
      states.push(s.status === 'reconnecting' ? [s.attempt, s.retryInMs] : s.status),
    );
    client.subscribe('chat', () => {});
    await pollCount(1);
    net.last().fail();
    await vi.waitFor(() => expect(client.getState().status).toBe('reconnecting'));
    clock.advance(250);
    await pollCount(2);
    net.last().respondText(502, 'Bad Gateway');
    await vi.waitFor(() => expect(clock.pending()).toEqual([500]));
    clock.advance(500);
    await pollCount(3);
    net.last().respond(200, {});
    await pollCount(4);
    net.last().respond(500, { error: { code: 'internal', message: 'x' } });
    await vi.waitFor(() => expect(clock.pending()).toEqual([250]));
    expect(states).toEqual([
      'connecting',
      [1, 250],
      'connecting',
      [2, 500],
      'connecting',
      'connected',
      [1, 250],
    ]);
  });

  it('caps the backoff at maxDelay', async () => {
    const client = make({ backoff: { initialDelay: 1000, maxDelay: 3000 } });
    client.subscribe('chat', () => {});
    for (let i = 1; i <= 4; i++) {
      await pollCount(i);
      net.last().fail();
      await vi.waitFor(() => expect(client.getState().status).toBe('reconnecting'));
      const delay = clock.pending()[0] ?? 0;
      expect(delay).toBe(Math.min(3000, 1000 * 2 ** (i - 1)) / 2);
      clock.advance(delay);
    }
  });

  it('waits Retry-After seconds on a 429', async () => {
    const client = make();
    client.subscribe('chat', () => {});
    await pollCount(1);
    net
      .last()
      .respond(429, { error: { code: 'rate_limited', message: 'slow' } }, { 'Retry-After': '7' });
    // 7 s, plus a quarter of the jitter's 25% (random is 0.5 here).
    await vi.waitFor(() => expect(clock.pending()).toEqual([7875]));
    expect(codes()).toContain('retry-after');
    clock.advance(7874);
    expect(net.polls).toHaveLength(1);
    clock.advance(1);
    await pollCount(2);
  });

  it('waits until a Retry-After HTTP date on a 503', async () => {
    const client = make();
    client.subscribe('chat', () => {});
    await pollCount(1);
    const at = new Date(clock.now() + 12_000).toUTCString();
    net.last().respond(503, {}, { 'Retry-After': at });
    await vi.waitFor(() => expect(client.getState().status).toBe('reconnecting'));
    expect(clock.pending()[0]).toBeGreaterThan(12_000);
    expect(clock.pending()[0]).toBeLessThanOrEqual(12_000 * 1.25);
  });

  it('backs off on a 404 (a deploy in progress)', async () => {
    const client = make();
    client.subscribe('chat', () => {});
    await pollCount(1);
    net.last().respond(404, { error: { code: 'not_found', message: 'no' } });
    await vi.waitFor(() => expect(client.getState().status).toBe('reconnecting'));
    clock.advance(250);
    await pollCount(2);
  });

  it.each([400, 413])('fails with the server error on a %i and polls no more', async (status) => {
    const client = make();
    client.subscribe('chat', () => {});
    await pollCount(1);
    net.last().respond(status, { error: { code: 'bad_request', message: 'topics missing' } });
    await vi.waitFor(() => expect(client.getState().status).toBe('failed'));
    const state = client.getState();
    if (state.status !== 'failed') throw new Error('not failed');
    expect(isHttpError(state.error) && state.error.status).toBe(status);
    expect(state.error.message).toBe('topics missing');
    expect(clock.pending()).toEqual([]);
    client.subscribe('other', () => {});
    await new Promise((r) => setTimeout(r, 20));
    expect(net.polls).toHaveLength(1);
  });

  it('asks the auth hook once on a 401, retries with its headers, then fails on a second 401', async () => {
    const auth = vi.fn(() => ({ authorization: 'Bearer fresh' }));
    const client = make({ headers: { authorization: 'Bearer old' }, auth });
    client.subscribe('chat', () => {});
    await pollCount(1);
    expect(net.polls[0]?.headers.get('authorization')).toBe('Bearer old');
    net.last().respond(401, { error: { code: 'unauthorized', message: 'expired' } });
    await pollCount(2);
    expect(net.polls[1]?.headers.get('authorization')).toBe('Bearer fresh');
    net.last().respond(403, { error: { code: 'forbidden', message: 'no' } });
    await vi.waitFor(() => expect(client.getState().status).toBe('failed'));
    expect(auth).toHaveBeenCalledTimes(1);
  });

  it('fails at once on a 401 when there is no auth hook or it gives nothing', async () => {
    const client = make({ auth: () => undefined });
    client.subscribe('chat', () => {});
    await pollCount(1);
    net.last().respond(401, {});
    await vi.waitFor(() => expect(client.getState().status).toBe('failed'));
  });

  it('calls a headers function per request', async () => {
    let n = 0;
    const client = make({ headers: async () => ({ 'x-n': String(++n) }) });
    client.subscribe('chat', () => {});
    await pollCount(1);
    net.last().respond(200, {});
    await pollCount(2);
    expect(net.polls.map((p) => p.headers.get('x-n'))).toEqual(['1', '2']);
  });

  it.each([
    ['not JSON', '<html>oops</html>'],
    ['a JSON array', '[1,2]'],
    ['messages of the wrong shape', '{"messages":[{"topic":"chat"}]}'],
  ])('treats a 200 that is %s as a protocol error with backoff', async (_name, text) => {
    const client = make();
    const errors: CometError[] = [];
    client.on('error', (e) => errors.push(e));
    client.subscribe('chat', () => {});
    await pollCount(1);
    net.last().respondText(200, text);
    await vi.waitFor(() => expect(client.getState().status).toBe('reconnecting'));
    expect(isProtocolError(errors[0])).toBe(true);
    clock.advance(250);
    await pollCount(2);
  });

  it('fails with a clear error for a relative url where there is no page location', async () => {
    const client = make({ url: '/api/comet' });
    client.subscribe('chat', () => {});
    await vi.waitFor(() => expect(client.getState().status).toBe('failed'));
    const state = client.getState();
    expect(state.status === 'failed' && state.error.message).toMatch(/absolute url/);
  });

  it('keeps going when a callback or listener throws', async () => {
    const client = make();
    const got: unknown[] = [];
    client.on('message', () => {
      throw new Error('listener bug');
    });
    client.subscribe('chat', () => {
      throw new Error('callback bug');
    });
    client.subscribe('chat', (data) => got.push(data));
    await pollCount(1);
    net.last().respond(200, { messages: [{ topic: 'chat', id: '1', data: 'a' }] });
    await pollCount(2);
    expect(got).toEqual(['a']);
    expect(codes().filter((c) => c === 'listener-error')).toHaveLength(2);
  });
});

describe('offline', () => {
  it('goes offline without requests and polls at once when back online', async () => {
    const client = make();
    client.subscribe('chat', () => {});
    await pollCount(1);
    online.set(false);
    expect(client.getState()).toEqual({ status: 'offline' });
    await vi.waitFor(() => expect(net.polls[0]?.aborted).toBe(true));
    online.set(true);
    await pollCount(2);
    expect(client.getState().status).toBe('connecting');
  });

  it('starts offline when the runtime says so', async () => {
    online.set(false);
    const client = make();
    client.subscribe('chat', () => {});
    await vi.waitFor(() => expect(client.getState()).toEqual({ status: 'offline' }));
    expect(net.polls).toHaveLength(0);
  });
});

describe('topics', () => {
  it('throws a TopicError for invalid names', () => {
    const client = make();
    for (const bad of ['', '_x', 'a b', 'x'.repeat(201), '__proto__'])
      expect(() => client.subscribe(bad, () => {})).toThrow(/topic/);
    expect(() => client.subscribe(['ok', 'no way'], () => {})).toThrow(/letters, digits/);
    expect(client.getState().status).toBe('idle');
  });

  it('treats constructor and toString like any other topic', async () => {
    const client = make();
    const got: unknown[] = [];
    client.subscribe(['constructor', 'toString', 'hasOwnProperty'], (data, m) =>
      got.push([m.topic, data]),
    );
    await pollCount(1);
    net.last().respond(200, {
      messages: [{ topic: 'constructor', id: '1', data: 'c' }],
      cursors: { constructor: '1', toString: '0', hasOwnProperty: '9' },
    });
    await pollCount(2);
    expect(got).toEqual([['constructor', 'c']]);
    expect(net.polls[1]?.body.cursors).toEqual({
      constructor: '1',
      toString: '0',
      hasOwnProperty: '9',
    });
  });

  it('unsubscribe with no argument removes every topic', async () => {
    const client = make();
    client.subscribe(['a', 'b'], () => {});
    await pollCount(1);
    client.unsubscribe();
    await vi.waitFor(() => expect(clock.pending()).toContain(100));
    clock.advance(100);
    expect(client.getState().status).toBe('idle');
  });
});

describe('state and events', () => {
  it('keeps the state identity between real changes and unsubscribes listeners', async () => {
    const client = make();
    const seen: string[] = [];
    const off = client.subscribeState((s) => seen.push(s.status));
    client.subscribe('chat', () => {});
    await pollCount(1);
    const connecting = client.getState();
    expect(client.getState()).toBe(connecting);
    net.last().respond(200, {});
    await pollCount(2);
    off();
    net.last().respond(200, {});
    await pollCount(3);
    expect(seen).toEqual(['connecting', 'connected']);
  });

  it('reconnect() polls again now and says why', async () => {
    const client = make();
    client.subscribe('chat', () => {});
    await pollCount(1);
    client.reconnect('user asked');
    await pollCount(2);
    expect(net.polls[0]?.aborted).toBe(true);
    expect(diagnostics.find((d) => d.code === 'reconnect-requested')?.detail).toEqual({
      reason: 'user asked',
    });
  });

  it('skips websocket without a WebSocket constructor, and unknown names, with a diagnostic', async () => {
    const client = make({
      transports: ['websocket', 'carrier-pigeon' as 'stream', 'longpoll'],
      environment: { WebSocket: () => undefined },
    });
    client.subscribe('chat', () => {});
    await pollCount(1);
    expect(
      diagnostics.filter((d) => d.code === 'transport-skipped').map((d) => d.detail?.transport),
    ).toEqual(['websocket', 'carrier-pigeon']);
    expect(client.getState()).toMatchObject({ transport: 'longpoll' });
  });

  it('rejects bad options with a clear error', () => {
    expect(() => createCometClient({ wait: -1 })).toThrow(/wait/);
    expect(() => createCometClient({ transports: [] })).toThrow(/transports/);
  });

  it('close() aborts, ends in closed, and refuses further use', async () => {
    const client = make();
    const states: string[] = [];
    client.subscribeState((s) => states.push(s.status));
    client.subscribe('chat', () => {});
    await pollCount(1);
    client.close();
    expect(states.at(-1)).toBe('closed');
    await vi.waitFor(() => expect(net.polls[0]?.aborted).toBe(true));
    expect(() => client.subscribe('chat', () => {})).toThrow(ClosedError);
    await expect(client.send('chat', 1)).rejects.toSatisfy(isClosedError);
  });
});

describe('topicStore', () => {
  it('keeps a snapshot stable between messages and makes a new one per message', async () => {
    const client = make();
    const store = client.topicStore('chat', { keep: 2 });
    expect(client.topicStore('chat', { keep: 2 })).toBe(store);
    const first = store.getSnapshot();
    expect(store.getSnapshot()).toBe(first);
    const changes = vi.fn();
    const off = store.subscribe(changes);
    await pollCount(1);
    net.last().respond(200, {
      messages: [
        { topic: 'chat', id: '1', data: 'a' },
        { topic: 'chat', id: '2', data: 'b' },
        { topic: 'chat', id: '3', data: 'c' },
      ],
    });
    await pollCount(2);
    expect(changes).toHaveBeenCalledTimes(3);
    const snap = store.getSnapshot();
    expect(snap).not.toBe(first);
    expect(store.getSnapshot()).toBe(snap);
    expect(snap.latest?.data).toBe('c');
    expect(snap.messages.map((m) => m.data)).toEqual(['b', 'c']);
    off();
    await vi.waitFor(() => expect(clock.pending()).toContain(100));
  });

  it('is ref-counted: the topic stays until the last store subscriber leaves', async () => {
    const client = make();
    const store = client.topicStore('chat');
    const a = store.subscribe(() => {});
    const b = store.subscribe(() => {});
    await pollCount(1);
    a();
    await new Promise((r) => setTimeout(r, 10));
    expect(clock.pending()).not.toContain(100);
    b();
    await vi.waitFor(() => expect(clock.pending()).toContain(100));
  });

  it('starts its topic at the cursor, and continues after its latest message when started again', async () => {
    const client = make();
    const store = client.topicStore('chat', { cursor: 'h9' });
    // Shared with the first one: a later caller's cursor is ignored.
    expect(client.topicStore('chat', { cursor: 'other' })).toBe(store);
    const off = store.subscribe(() => {});
    await pollCount(1);
    expect(net.polls[0]?.body.cursors).toEqual({ chat: 'h9' });
    net.last().respond(200, { messages: [{ topic: 'chat', id: 'h10', data: 'a' }] });
    await pollCount(2);
    expect(store.getSnapshot().latest?.id).toBe('h10');
    off();
    await vi.waitFor(() => expect(clock.pending()).toContain(100));
    clock.advance(100);
    await vi.waitFor(() => expect(client.getState().status).toBe('idle'));
    store.subscribe(() => {});
    await pollCount(3);
    expect(net.polls[2]?.body.cursors).toEqual({ chat: 'h10' });
  });

  it('drops a store once its last listener leaves, and a new store does not replay', async () => {
    // Whether a store is still cached shows in its identity: a cached one is given out again.
    const client = make();
    const first = client.topicStore('room-0');
    const used: unknown[] = [];
    for (let i = 0; i < 100; i++) {
      const store = client.topicStore(`room-${i}`, { keep: 5 });
      used.push(store);
      const off = store.subscribe(() => {});
      off();
    }
    for (const i of [0, 50, 99])
      expect(client.topicStore(`room-${i}`, { keep: 5 })).not.toBe(used[i]);
    // room-0 with keep 1 was never subscribed: still cached, as until now.
    expect(client.topicStore('room-0')).toBe(first);
    first.subscribe(() => {})();
    expect(client.topicStore('room-0')).not.toBe(first);

    const store = client.topicStore('chat', { keep: 5 });
    const off = store.subscribe(() => {});
    await vi.waitFor(() => expect(net.polls.at(-1)?.body.topics).toEqual(['chat']));
    net.last().respond(200, {
      messages: [{ topic: 'chat', id: '1', data: 'a' }],
      cursors: { chat: '1' },
    });
    await vi.waitFor(() => expect(store.getSnapshot().latest?.id).toBe('1'));
    off();
    await vi.waitFor(() => expect(clock.pending()).toContain(100));
    clock.advance(100);
    await vi.waitFor(() => expect(client.getState().status).toBe('idle'));

    const again = client.topicStore('chat', { keep: 5 });
    expect(again).not.toBe(store);
    expect(again.getSnapshot()).toEqual({ latest: undefined, messages: [] });
    const polls = net.polls.length;
    const got = vi.fn();
    again.subscribe(got);
    await pollCount(polls + 1);
    // Started from now: the server sends nothing already delivered.
    expect(net.polls.at(-1)?.body.cursors).toBeUndefined();
    expect(got).not.toHaveBeenCalled();
    // A store started again by whoever holds it (React StrictMode's second mount) is cached
    // again, unless a newer store took its key.
    store.subscribe(() => {});
    expect(client.topicStore('chat', { keep: 5 })).toBe(again);
    const held = client.topicStore('held');
    held.subscribe(() => {})();
    held.subscribe(() => {});
    expect(client.topicStore('held')).toBe(held);
  });

  it('uses no cursor for a topic the client already follows', async () => {
    const client = make();
    client.subscribe('chat', () => {}, { cursor: 'a1' });
    client.topicStore('chat', { cursor: 'b1' }).subscribe(() => {});
    await pollCount(1);
    expect(net.polls[0]?.body.cursors).toEqual({ chat: 'a1' });
  });

  it('rejects a cursor that is not a string', () => {
    const client = make();
    expect(() => client.topicStore('chat', { cursor: 5 as unknown as string })).toThrow(/cursor/);
  });

  it('rejects a bad keep', () => {
    const client = make();
    expect(() => client.topicStore('chat', { keep: 0 })).toThrow(/keep/);
  });
});

describe('send', () => {
  it('posts to {url}/{topic} with a client-made id and resolves with the messageId', async () => {
    const client = make({ userId: 'ann' });
    await expect(client.send('room/1', { text: 'hi' })).resolves.toBe('m1');
    expect(net.sends[0]?.topic).toBe('room/1');
    expect(net.sends[0]?.body).toEqual({
      v: 1,
      sessionGuid: client.sessionGuid,
      userId: 'ann',
      id: 'uuid-2',
      data: { text: 'hi' },
    });
  });

  it('retries with the same id after a network error, so a lost answer never publishes twice', async () => {
    const client = make();
    net.onSend(({ body }, n) =>
      n === 1 ? HttpResponse.error() : HttpResponse.json({ id: body.id, messageId: 'once' }),
    );
    const sent = client.send('chat', 'x');
    await vi.waitFor(() => expect(codes()).toContain('send-retry'));
    clock.advance(250);
    await expect(sent).resolves.toBe('once');
    expect(net.sends.map((s) => s.body.id)).toEqual(['uuid-2', 'uuid-2']);
  });

  it('gives up a send that hangs after watchdogGrace and retries it with the same id', async () => {
    const client = make({ watchdogGrace: 100 });
    net.onSend(({ body }, n) =>
      n === 1
        ? new Promise<Response>(() => {})
        : HttpResponse.json({ id: body.id, messageId: 'late' }),
    );
    const sent = client.send('chat', 'x');
    await vi.waitFor(() => expect(codes()).toContain('send-retry'));
    clock.advance(clock.pending()[0] ?? 0);
    await expect(sent).resolves.toBe('late');
    expect(net.sends.map((s) => s.body.id)).toEqual(['uuid-2', 'uuid-2']);
  });

  it('honours Retry-After on a 429 and retries a 5xx', async () => {
    const client = make();
    net.onSend(({ body }, n) =>
      n === 1
        ? HttpResponse.json({}, { status: 429, headers: { 'Retry-After': '3' } })
        : n === 2
          ? HttpResponse.json({}, { status: 503 })
          : HttpResponse.json({ id: body.id, messageId: 'ok' }),
    );
    const sent = client.send('chat', 'x');
    await vi.waitFor(() => expect(clock.pending()).toEqual([3375]));
    clock.advance(3375);
    await vi.waitFor(() => expect(net.sends).toHaveLength(2));
    await vi.waitFor(() => expect(clock.pending()).toHaveLength(1));
    clock.advance(clock.pending()[0] ?? 0);
    await expect(sent).resolves.toBe('ok');
  });

  it('rejects on a 4xx with the server error', async () => {
    const client = make();
    net.onSend(() =>
      HttpResponse.json(
        { error: { code: 'bad_request', message: 'text is empty' } },
        { status: 400 },
      ),
    );
    const error = await client.send('chat', { text: '' }).catch((e: unknown) => e);
    expect(isHttpError(error) && [error.status, error.code, error.message]).toEqual([
      400,
      'bad_request',
      'text is empty',
    ]);
  });

  it('queues sends in order while offline and sends them when back online', async () => {
    const client = make();
    online.set(false);
    const a = client.send('chat', 'a');
    const b = client.send('chat', 'b');
    await new Promise((r) => setTimeout(r, 20));
    expect(net.sends).toHaveLength(0);
    online.set(true);
    await expect(Promise.all([a, b])).resolves.toEqual(['m1', 'm2']);
    expect(net.sends.map((s) => s.body.data)).toEqual(['a', 'b']);
  });

  it('holds sends while reconnecting after 5xx polls and sends them in order, once each, on recovery', async () => {
    // The state each send's request went out in, recorded as fetch is called.
    const sentIn: string[] = [];
    const client = make({
      environment: {
        fetch: (input, init) => {
          const url = input instanceof Request ? input.url : String(input);
          if (url.startsWith(`${BASE}/`)) sentIn.push(client.getState().status);
          return globalThis.fetch(input, init);
        },
      },
    });
    client.subscribe('chat', () => {});
    await pollCount(1);
    net.last().respond(503, { error: { code: 'unavailable', message: 'down' } });
    await vi.waitFor(() => expect(clock.pending()).toEqual([250]));
    clock.advance(250);
    await pollCount(2);
    net.last().respondText(502, 'Bad Gateway');
    await vi.waitFor(() => expect(clock.pending()).toEqual([500]));
    expect(client.getState()).toMatchObject({ status: 'reconnecting', attempt: 2 });
    const sent = ['a', 'b', 'c'].map((data) => client.send('chat', data));
    // Every step of a send that is not held runs in microtasks up to its fetch: one macrotask
    // later it would have been called.
    await new Promise((r) => setTimeout(r, 0));
    expect(sentIn).toEqual([]);
    // The server recovers: the retry's poll goes out and is answered.
    clock.advance(500);
    await pollCount(3);
    net.last().respond(200, { cursors: { chat: '0' } });
    await expect(Promise.all(sent)).resolves.toEqual(['m1', 'm2', 'm3']);
    expect(net.sends.map((s) => [s.body.data, s.body.id])).toEqual([
      ['a', 'uuid-2'],
      ['b', 'uuid-3'],
      ['c', 'uuid-4'],
    ]);
    expect(sentIn).not.toContain('reconnecting');
  });

  it('rejects beyond sendQueueLimit, on an invalid topic or data, and on close()', async () => {
    const client = make({ sendQueueLimit: 2 });
    online.set(false);
    const a = client.send('chat', 'a');
    const b = client.send('chat', 'b');
    await expect(client.send('chat', 'c')).rejects.toThrow(/queue is full/);
    await expect(client.send('no way', 'c')).rejects.toSatisfy(isTopicError);
    await expect(client.send('chat', undefined)).rejects.toThrow(/JSON/);
    await expect(client.send('chat', { n: 1n })).rejects.toThrow(/JSON/);
    client.close();
    await expect(a).rejects.toSatisfy(isClosedError);
    await expect(b).rejects.toSatisfy(isClosedError);
  });

  it('asks the auth hook on a 401 and retries the send with its headers', async () => {
    const client = make({ auth: () => ({ authorization: 'Bearer new' }) });
    net.onSend(({ body }, n) =>
      n === 1
        ? HttpResponse.json({}, { status: 401 })
        : HttpResponse.json({ id: body.id, messageId: 'ok' }),
    );
    await expect(client.send('chat', 1)).resolves.toBe('ok');
    expect(net.sends[1]?.headers.get('authorization')).toBe('Bearer new');
  });

  it('resolves with undefined on a 2xx the protocol does not recognise, and never sends it again', async () => {
    const client = make();
    net.onSend((_, n) =>
      n === 1 ? HttpResponse.json({ ok: true }) : new HttpResponse(null, { status: 204 }),
    );
    await expect(client.send('chat', 'a')).resolves.toBeUndefined();
    await expect(client.send('chat', 'b')).resolves.toBeUndefined();
    clock.advance(60_000);
    await new Promise((r) => setTimeout(r, 20));
    expect(net.sends.map((s) => s.data)).toEqual(['a', 'b']);
    expect(codes()).not.toContain('send-retry');
  });
});

describe('sendTimeout', () => {
  it('rejects a send retried through an outage with a TimeoutError, then sends the next one', async () => {
    const client = make({ sendTimeout: 5000 });
    net.onSend(({ body }) =>
      body.data === 'a'
        ? HttpResponse.json({}, { status: 503 })
        : HttpResponse.json({ id: body.id, messageId: 'mb' }),
    );
    const a = client.send('chat', 'a').catch((e: unknown) => e);
    // Three retries (backoff 250, 500 and 1000 ms with random 0.5): 1750 ms.
    for (let i = 1; i <= 3; i++) {
      await vi.waitFor(() =>
        expect(codes().filter((code) => code === 'send-retry')).toHaveLength(i),
      );
      clock.advance(clock.pending()[0] ?? 0);
    }
    const b = client.send('chat', 'b');
    clock.advance(5000 - 1750);
    const error = await a;
    expect(isTimeoutError(error)).toBe(true);
    expect((error as CometError).message).toBe('send to chat not accepted within 5000 ms');
    expect(isHttpError((error as CometError).cause)).toBe(true);
    await expect(b).resolves.toBe('mb');
    const order = net.sends.map((s) => s.data);
    expect(order.at(-1)).toBe('b');
    expect(order.slice(0, -1).every((data) => data === 'a')).toBe(true);
  });

  it('rejects queued sends in their order when an outage outlasts sendTimeout', async () => {
    const client = make({ sendTimeout: 3000 });
    online.set(false);
    const settled: string[] = [];
    const a = client.send('chat', 'a').catch(() => settled.push('a'));
    clock.advance(1000);
    const b = client.send('chat', 'b').catch(() => settled.push('b'));
    clock.advance(2000);
    await a;
    expect(settled).toEqual(['a']);
    clock.advance(1000);
    await b;
    expect(settled).toEqual(['a', 'b']);
    online.set(true);
    await new Promise((r) => setTimeout(r, 20));
    expect(net.sends).toHaveLength(0);
  });

  it('stops a send whose request is out at the deadline and goes on with the next', async () => {
    const client = make({ sendTimeout: 1000, watchdogGrace: 60_000 });
    net.onSend(({ body }) =>
      body.data === 'a'
        ? new Promise<Response>(() => {})
        : HttpResponse.json({ id: body.id, messageId: 'mb' }),
    );
    const a = client.send('chat', 'a');
    await vi.waitFor(() => expect(net.sends).toHaveLength(1));
    clock.advance(500);
    const b = client.send('chat', 'b');
    clock.advance(500);
    await expect(a).rejects.toSatisfy(isTimeoutError);
    await expect(b).resolves.toBe('mb');
  });
});

describe('read your own writes', () => {
  it('holds a send to a topic subscribed just before until the handshake placed it', async () => {
    const client = make();
    const got: unknown[] = [];
    client.subscribe('chat', (data) => got.push(data));
    const sent = client.send('chat', 'hello');
    await pollCount(1);
    await new Promise((r) => setTimeout(r, 20));
    expect(net.sends).toHaveLength(0);
    net.last().respond(200, { cursors: { chat: 'c0' } });
    await expect(sent).resolves.toBe('m1');
  });

  it('sends at once to a topic that is not subscribed or was subscribed from a cursor', async () => {
    const client = make();
    client.subscribe('news', () => {}, { cursor: 'n5' });
    await expect(client.send('news', 1)).resolves.toBe('m1');
    await expect(client.send('chat', 2)).resolves.toBe('m2');
  });

  it('sends once a server of the original design answers a poll without cursors', async () => {
    const client = make();
    client.subscribe('chat', () => {});
    const sent = client.send('chat', 'hello');
    await pollCount(1);
    net.last().respond(200, { topic: 'chat', data: 'legacy' });
    await expect(sent).resolves.toBe('m1');
  });

  it('waits at most openTimeout for a handshake that does not come', async () => {
    const client = make({ openTimeout: 2000 });
    client.subscribe('chat', () => {});
    const sent = client.send('chat', 'hello');
    await pollCount(1);
    clock.advance(1999);
    await new Promise((r) => setTimeout(r, 20));
    expect(net.sends).toHaveLength(0);
    clock.advance(1);
    await expect(sent).resolves.toBe('m1');
  });
});
