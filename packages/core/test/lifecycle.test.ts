/**
 * The connection through the page's lifecycle and the adaptive hold, on long-poll: an injected
 * lifecycle source (freeze, pagehide, pageshow from the back/forward cache, visible), the
 * manual clock (a jump is a frozen page or a hidden tab's late timers), msw at the network edge.
 * The real browser's events are tested in tests/lifecycle.browser.test.ts.
 */
import { createFakeBackend } from '@cometkit/test-utils';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { createCometClient } from '../src/client';
import type { StorageLike } from '../src/environment';
import type { CometClientOptions } from '../src/options';
import { LATE_MS, RAISE_AFTER } from '../src/policy';
import type { CometClient, Diagnostic } from '../src/types';
import { createClock, createLifecycle, createOnline } from './helpers';

const net = createFakeBackend({ mode: 'scripted', listen: false });
let clock: ReturnType<typeof createClock>;
let page: ReturnType<typeof createLifecycle>;
let clients: CometClient[] = [];
let diagnostics: Diagnostic[] = [];
let storage: StorageLike & { data: Map<string, string> };

beforeAll(() => net.server.listen({ onUnhandledRequest: 'error' }));
afterAll(() => net.server.close());
beforeEach(() => {
  clock = createClock();
  page = createLifecycle();
  diagnostics = [];
  const data = new Map<string, string>();
  storage = {
    data,
    getItem: (key) => data.get(key) ?? null,
    setItem: (key, value) => void data.set(key, value),
  };
});
afterEach(() => {
  for (const c of clients) c.close();
  clients = [];
  net.reset();
});

function make(options: CometClientOptions = {}) {
  const client = createCometClient({
    url: net.url,
    transports: ['longpoll'],
    ...options,
    environment: {
      setTimeout: clock.setTimeout,
      clearTimeout: clock.clearTimeout,
      now: clock.now,
      random: () => 0.5,
      online: createOnline(true).source,
      lifecycle: page.source,
      storage: () => storage,
      ...options.environment,
    },
  });
  client.on('diagnostic', (d) => diagnostics.push(d));
  clients.push(client);
  return client;
}

const pollCount = (n: number) => vi.waitFor(() => expect(net.polls.length).toBe(n));
const codes = () => diagnostics.map((d) => d.code);
const chat = (id: string) => ({
  messages: [{ topic: 'chat', id, data: id }],
  cursors: { chat: id },
});

/** A client whose first poll was answered with message 1: the second poll is held. */
async function following(got: unknown[] = [], options?: CometClientOptions) {
  const client = make(options);
  client.subscribe('chat', (data) => got.push(data));
  await pollCount(1);
  net.last().respond(200, chat('1'));
  await pollCount(2);
  return client;
}

describe('page lifecycle', () => {
  it('ends the held poll when the page freezes, and polls again with its cursor on resume', async () => {
    const got: unknown[] = [];
    const client = await following(got);
    const held = net.last();
    page.emit('suspend', 'freeze');
    await vi.waitFor(() => expect(held.aborted).toBe(true));
    expect(codes()).toContain('page-suspended');
    // Nothing runs while frozen: no watchdog, no retry.
    expect(clock.pending()).toEqual([]);
    clock.jump(10 * 60_000);
    expect(net.polls).toHaveLength(2);
    page.emit('resume', 'resume');
    await pollCount(3);
    expect(net.polls[2]?.cursors).toEqual({ chat: '1' });
    expect(codes()).toContain('page-resumed');
    net.last().respond(200, chat('2'));
    await vi.waitFor(() => expect(got).toEqual(['1', '2']));
    expect(client.getState()).toEqual({ status: 'connected', transport: 'longpoll' });
  });

  it('releases the connection on pagehide and catches up on a back/forward cache restore, nothing lost or repeated', async () => {
    const got: unknown[] = [];
    await following(got);
    page.emit('suspend', 'pagehide');
    await vi.waitFor(() => expect(net.polls[1]?.aborted).toBe(true));
    page.emit('resume', 'pageshow');
    await pollCount(3);
    // The server answers from the cursor: 1 again (a repeat the client drops), then 2 and 3.
    net.last().respond(200, {
      messages: ['1', '2', '3'].map((id) => ({ topic: 'chat', id, data: id })),
      cursors: { chat: '3' },
    });
    await vi.waitFor(() => expect(got).toEqual(['1', '2', '3']));
  });

  it('does nothing on pagehide while nothing runs, and stops listening on close()', async () => {
    const client = make();
    page.emit('suspend', 'pagehide');
    page.emit('resume', 'pageshow');
    expect(codes()).toEqual([]);
    client.subscribe('chat', () => {});
    await pollCount(1);
    expect(page.listeners()).toBe(1);
    client.close();
    expect(page.listeners()).toBe(0);
  });

  it('ignores a visible tab while connected, and retries at once when it was waiting to', async () => {
    await following();
    page.emit('resume', 'visible');
    expect(codes()).not.toContain('page-resumed');
    net.last().respondText(503, '');
    await vi.waitFor(() => expect(codes()).toContain('retry-scheduled'));
    // The retry timer of a hidden tab may not fire for a minute: visible retries now.
    page.emit('resume', 'visible');
    await pollCount(3);
    expect(codes()).toContain('page-resumed');
  });

  it('polls again at once with its cursor after a watchdog that fired late, without a retry', async () => {
    const got: unknown[] = [];
    const client = await following(got);
    const held = net.last();
    // A frozen page (no freeze event: a sleeping machine): the watchdog fires minutes late.
    clock.jump(5 * 60_000);
    await pollCount(3);
    expect(held.aborted).toBe(true);
    expect(net.polls[2]?.cursors).toEqual({ chat: '1' });
    const late = diagnostics.find((d) => d.code === 'timer-late');
    expect(late?.detail?.lateMs).toBeGreaterThan(LATE_MS);
    expect(codes()).not.toContain('watchdog-timeout');
    expect(codes()).not.toContain('retry-scheduled');
    expect(client.getState()).toEqual({ status: 'connected', transport: 'longpoll' });
  });

  it('still calls a watchdog that fired on time a timeout', async () => {
    await following();
    clock.advance(25_000 + 10_000);
    await vi.waitFor(() => expect(codes()).toContain('watchdog-timeout'));
    expect(codes()).not.toContain('timer-late');
  });
});

describe('the adaptive hold', () => {
  it('lowers wait after two network errors that end polls near the same age, not after one', async () => {
    await following();
    clock.advance(10_000);
    net.last().fail();
    await vi.waitFor(() => expect(codes()).toContain('retry-scheduled'));
    clock.advance(clock.pending()[0] ?? 0);
    await pollCount(3);
    expect(net.polls[2]?.body.wait).toBe(25_000);
    clock.advance(10_500);
    net.last().fail();
    await vi.waitFor(() => expect(codes()).toContain('wait-lowered'));
    clock.advance(clock.pending()[0] ?? 0);
    await pollCount(4);
    expect(net.polls[3]?.body.wait).toBe(8400);
    expect(diagnostics.find((d) => d.code === 'wait-lowered')?.detail).toMatchObject({
      reason: '2 network errors near 10500 ms',
      heldMs: 10_500,
      wait: 8400,
      previousWait: 25_000,
    });
  });

  it(`raises wait again after ${RAISE_AFTER} polls held to their end, and lowers it again on the old cut`, async () => {
    await following();
    clock.advance(10_000);
    net.last().respondText(504, '');
    await pollCount(3);
    expect(net.polls[2]?.body.wait).toBe(8000);
    for (let i = 0; i < RAISE_AFTER; i++) {
      clock.advance(8000);
      net.last().respond(200, {});
      await pollCount(4 + i);
    }
    expect(net.polls.at(-1)?.body.wait).toBe(25_000);
    expect(diagnostics.find((d) => d.code === 'wait-raised')?.detail).toMatchObject({
      wait: 25_000,
      previousWait: 8000,
    });
    clock.advance(10_000);
    net.last().respondText(504, '');
    await pollCount(4 + RAISE_AFTER);
    expect(net.polls.at(-1)?.body.wait).toBe(8000);
  });

  it('remembers the learned wait for the URL, within the transport memory TTL', async () => {
    const first = await following();
    clock.advance(10_000);
    net.last().respondText(504, '');
    await pollCount(3);
    first.close();
    const second = make();
    second.subscribe('chat', () => {});
    await pollCount(4);
    expect(net.polls[3]?.body.wait).toBe(8000);
    expect(diagnostics.at(-1)).toMatchObject({
      code: 'wait-lowered',
      detail: { reason: 'remembered', wait: 8000 },
    });
    second.close();
    clock.advance(3_600_000);
    const third = make();
    third.subscribe('chat', () => {});
    await pollCount(5);
    expect(net.polls[4]?.body.wait).toBe(25_000);
  });

  it('never goes above the wait option, even when a larger wait was remembered', async () => {
    storage.setItem(
      `cometkit:transport:${net.url}`,
      JSON.stringify({ name: 'longpoll', at: clock.now(), wait: 60_000 }),
    );
    make({ wait: 20_000 }).subscribe('chat', () => {});
    await pollCount(1);
    expect(net.polls[0]?.body.wait).toBe(20_000);
  });
});
