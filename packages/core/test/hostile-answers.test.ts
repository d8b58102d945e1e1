/**
 * A hostile or broken server cannot make the client hammer it: `Retry-After` is clamped to
 * [1 s, maxDelay] and the fast re-poll guard counts only messages handed to a callback. msw at
 * the network edge, vitest's fake timers (timer APIs only) for the client's delays.
 */
import { HttpResponse, http } from 'msw';
import { setupServer } from 'msw/node';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { createCometClient } from '../src/client';
import type { CometClient } from '../src/types';

const URL = 'http://comet.test/api/comet';
const server = setupServer();
/** Answers after this many requests are held forever: a client in a tight loop stops there. */
const BOUND = 60;
let requests = 0;
let client: CometClient | undefined;

beforeAll(() => server.listen({ onUnhandledRequest: 'error' }));
afterAll(() => server.close());
beforeEach(() => {
  requests = 0;
  vi.useFakeTimers({
    toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'],
  });
});
afterEach(() => {
  client?.close();
  client = undefined;
  server.resetHandlers();
  vi.useRealTimers();
});

/** Polls answered by `answer` (the first {@link BOUND}), the rest held until the client aborts. */
function answerPolls(answer: () => Response) {
  server.use(
    http.post(URL, () => {
      requests++;
      return requests <= BOUND ? answer() : new Promise<Response>(() => {});
    }),
  );
}

function start() {
  client = createCometClient({ url: URL, transports: ['longpoll'] });
  return client;
}

describe('Retry-After', () => {
  it('waits at least 1 s after a Retry-After of 0', async () => {
    answerPolls(() => new HttpResponse(null, { status: 503, headers: { 'Retry-After': '0' } }));
    start().subscribe('chat', () => {});
    await vi.advanceTimersByTimeAsync(999);
    expect(requests).toBe(1);
    await vi.advanceTimersByTimeAsync(2001);
    // At most one retry per second (each one up to 25% later).
    expect(requests).toBeGreaterThanOrEqual(2);
    expect(requests).toBeLessThanOrEqual(3);
  });

  it('waits maxDelay, not 1 ms, after a Retry-After beyond any timer', async () => {
    answerPolls(
      () => new HttpResponse(null, { status: 503, headers: { 'Retry-After': '99999999999' } }),
    );
    const warnings: string[] = [];
    const onWarning = (warning: Error) => warnings.push(warning.name);
    process.on('warning', onWarning);
    try {
      start().subscribe('chat', () => {});
      await vi.advanceTimersByTimeAsync(29_999);
      expect(requests).toBe(1);
      await vi.advanceTimersByTimeAsync(30_000 * 0.25 + 1);
      expect(requests).toBe(2);
    } finally {
      process.off('warning', onWarning);
    }
    expect(warnings).not.toContain('TimeoutOverflowWarning');
  });
});

describe('the fast re-poll guard', () => {
  it('backs off when a server repeats one message (no callback called again)', async () => {
    answerPolls(() =>
      HttpResponse.json({
        messages: [{ topic: 'chat', id: 'm1', data: 1 }],
        cursors: { chat: 'm1' },
      }),
    );
    const got: unknown[] = [];
    start().subscribe('chat', (data) => got.push(data));
    await vi.advanceTimersByTimeAsync(3000);
    expect(got).toEqual([1]);
    // The first answer delivered; three fast repeats, then backoff (0.5 s, 1 s, 2 s caps).
    expect(requests).toBeLessThan(10);
  });

  it('backs off when answers carry only messages for topics nobody follows', async () => {
    answerPolls(() =>
      HttpResponse.json({ messages: [{ topic: 'other', id: `m${requests}`, data: 1 }] }),
    );
    start().subscribe('chat', () => {});
    await vi.advanceTimersByTimeAsync(3000);
    expect(requests).toBeLessThan(10);
  });

  it('polls again at once after answers that delivered something new', async () => {
    answerPolls(() =>
      HttpResponse.json({ messages: [{ topic: 'chat', id: `m${requests}`, data: requests }] }),
    );
    const got: unknown[] = [];
    start().subscribe('chat', (data) => got.push(data));
    await vi.advanceTimersByTimeAsync(10);
    expect(requests).toBe(BOUND + 1);
    expect(got).toHaveLength(BOUND);
  });
});
