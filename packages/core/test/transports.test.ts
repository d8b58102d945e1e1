/**
 * The WebSocket and streaming transports and the fallback between transports: msw at the
 * network edge for HTTP (SSE as a `ReadableStream` response), an injected fake WebSocket, and
 * the injected manual clock for every timer (open timeout, ping/pong, backoff, probes).
 */

import { createFakeBackend } from '@cometkit/test-utils';
import { HttpResponse, http } from 'msw';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { createCometClient } from '../src/client';
import type { StorageLike } from '../src/environment';
import { isHttpError } from '../src/errors';
import type { CometClientOptions } from '../src/options';
import type { PollRequest } from '../src/protocol';
import type { CometClient, Diagnostic } from '../src/types';
import { createClock, createOnline } from './helpers';

type Frame = Record<string, unknown> & { type: string };

/** A WebSocket the test drives: `accept()` opens it, `frame()` delivers, `die()` closes it. */
class FakeSocket {
  static all: FakeSocket[] = [];
  readyState = 0;
  sent: Frame[] = [];
  closedByClient = false;
  onopen: (() => void) | null = null;
  onmessage: ((event: { data: string }) => void) | null = null;
  onclose: ((event: { code: number; reason: string }) => void) | null = null;
  onerror: (() => void) | null = null;
  constructor(readonly url: string) {
    FakeSocket.all.push(this);
  }
  send(text: string) {
    this.sent.push(JSON.parse(text) as Frame);
  }
  close() {
    this.readyState = 3;
    this.closedByClient = true;
  }
  accept() {
    this.readyState = 1;
    this.onopen?.();
  }
  frame(frame: Frame) {
    this.onmessage?.({ data: JSON.stringify(frame) });
  }
  die(code = 1006) {
    this.readyState = 3;
    this.onerror?.();
    this.onclose?.({ code, reason: '' });
  }
  polls() {
    return this.sent.filter((f) => f.type === 'poll');
  }
}
const lastSocket = () => FakeSocket.all.at(-1) as FakeSocket;

/** One SSE answer the test writes into. */
interface HeldStream {
  body: PollRequest;
  aborted: boolean;
  /** Chunks written so far. */
  chunks: number;
  event(name: string, data: unknown): void;
  /** Writes an SSE comment (the server's `: hb`). */
  comment(text: string): void;
  end(): void;
}

const net = createFakeBackend({ mode: 'scripted', listen: false });
const BASE = net.url;
const streams: HeldStream[] = [];
let streamAnswer: 'stream' | 'refuse' = 'stream';
const encoder = new TextEncoder();
const streamHandler = http.post(`${BASE}/_stream`, async ({ request }) => {
  const body = (await request.json()) as PollRequest;
  if (streamAnswer === 'refuse') return HttpResponse.error();
  let controller: ReadableStreamDefaultController<Uint8Array> | undefined;
  const write = (text: string) => {
    held.chunks++;
    controller?.enqueue(encoder.encode(text));
  };
  const held: HeldStream = {
    body,
    aborted: false,
    chunks: 0,
    event: (name, data) => write(`event: ${name}\ndata: ${JSON.stringify(data)}\n\n`),
    comment: (text) => write(`: ${text}\n\n`),
    end: () => controller?.close(),
  };
  request.signal.addEventListener('abort', () => {
    held.aborted = true;
  });
  streams.push(held);
  const stream = new ReadableStream<Uint8Array>({
    start(c) {
      controller = c;
    },
  });
  return new HttpResponse(stream, { headers: { 'content-type': 'text/event-stream' } });
});
const liveStream = () => {
  const live = streams.filter((s) => !s.aborted);
  return live[live.length - 1] as HeldStream;
};

let clock: ReturnType<typeof createClock>;
let clients: CometClient[] = [];
let diagnostics: Diagnostic[] = [];
let storage: StorageLike & { data: Map<string, string> };

beforeAll(() => net.server.listen({ onUnhandledRequest: 'error' }));
afterAll(() => net.server.close());
beforeEach(() => {
  clock = createClock();
  diagnostics = [];
  FakeSocket.all = [];
  streams.length = 0;
  streamAnswer = 'stream';
  const data = new Map<string, string>();
  storage = {
    data,
    getItem: (key) => data.get(key) ?? null,
    setItem: (key, value) => void data.set(key, value),
  };
  net.server.use(streamHandler);
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
    upgradeInterval: 0,
    ...options,
    environment: {
      setTimeout: clock.setTimeout,
      clearTimeout: clock.clearTimeout,
      now: clock.now,
      random: () => 0.5,
      online: createOnline(true).source,
      randomUUID: () => `uuid-${++uuid}`,
      storage: () => storage,
      WebSocket: () => FakeSocket as unknown as typeof WebSocket,
      ...options.environment,
    },
  });
  client.on('diagnostic', (d) => diagnostics.push(d));
  clients.push(client);
  return client;
}

const codes = () => diagnostics.map((d) => d.code);
const transportOf = (client: CometClient) => {
  const state = client.getState();
  return state.status === 'connected' ? state.transport : undefined;
};
const sockets = (n: number) => vi.waitFor(() => expect(FakeSocket.all).toHaveLength(n));
const streamCount = (n: number) => vi.waitFor(() => expect(streams).toHaveLength(n));
/** A socket accepted and opened by the server with `cursors`. */
function openSocket(socket: FakeSocket, cursors: Record<string, string> = {}) {
  socket.accept();
  socket.frame({ type: 'open', cursors });
}
/** Runs the next timer (backoff, open timeout…). */
const nextTimer = () => clock.advance(clock.pending()[0] ?? 0);

describe('WebSocket transport', () => {
  it('sends a poll frame without wait, and is connected on the open frame', async () => {
    const client = make({ userId: 'ann' });
    client.subscribe('chat', () => {});
    await sockets(1);
    expect(lastSocket().url).toBe('ws://comet.test/api/comet/_ws');
    lastSocket().accept();
    // The frame waits for `headers()` (async): none here, so the frame has none.
    await vi.waitFor(() =>
      expect(lastSocket().polls()).toEqual([
        { type: 'poll', v: 1, sessionGuid: client.sessionGuid, userId: 'ann', topics: ['chat'] },
      ]),
    );
    expect(client.getState()).toMatchObject({ status: 'connecting', transport: 'websocket' });
    lastSocket().frame({ type: 'open', cursors: { chat: '4' } });
    expect(client.getState()).toEqual({ status: 'connected', transport: 'websocket' });
  });

  it('delivers messages frames and drops ids already delivered', async () => {
    const client = make();
    const got: unknown[] = [];
    client.subscribe('chat', (data) => got.push(data));
    await sockets(1);
    openSocket(lastSocket());
    const a = { topic: 'chat', id: '1', data: 'a' };
    lastSocket().frame({ type: 'messages', messages: [a], cursors: { chat: '1' } });
    lastSocket().frame({
      type: 'messages',
      messages: [a, { topic: 'chat', id: '2', data: 'b' }],
      cursors: { chat: '2' },
    });
    expect(got).toEqual(['a', 'b']);
  });

  it('changes topics with a new poll frame on the same socket', async () => {
    const client = make();
    client.subscribe('chat', () => {});
    await sockets(1);
    openSocket(lastSocket(), { chat: '3' });
    client.subscribe('typing', () => {});
    await vi.waitFor(() => expect(lastSocket().polls()).toHaveLength(2));
    expect(lastSocket().polls()[1]).toMatchObject({
      topics: ['chat', 'typing'],
      cursors: { chat: '3' },
    });
    expect(FakeSocket.all).toHaveLength(1);
    expect(lastSocket().closedByClient).toBe(false);
  });

  it('pings every 20 s and keeps a connection that answers', async () => {
    const client = make();
    client.subscribe('chat', () => {});
    await sockets(1);
    openSocket(lastSocket());
    for (let i = 1; i <= 2; i++) {
      clock.advance(20_000);
      expect(lastSocket().sent.filter((f) => f.type === 'ping')).toHaveLength(i);
      lastSocket().frame({ type: 'pong' });
    }
    clock.advance(15_000);
    expect(transportOf(client)).toBe('websocket');
    expect(codes()).not.toContain('transport-demoted');
  });

  it('pings every third of the idleTimeout the server announced when that is sooner', async () => {
    const client = make();
    client.subscribe('chat', () => {});
    await sockets(1);
    lastSocket().accept();
    lastSocket().frame({ type: 'open', cursors: {}, timings: { idleTimeout: 30_000 } });
    const pings = () => lastSocket().sent.filter((f) => f.type === 'ping');
    clock.advance(9_999);
    expect(pings()).toHaveLength(0);
    clock.advance(1);
    expect(pings()).toHaveLength(1);
    lastSocket().frame({ type: 'pong' });
    clock.advance(10_000);
    expect(pings()).toHaveLength(2);
    // The pong timeout stays 10 s.
    clock.advance(9_999);
    expect(codes()).not.toContain('transport-demoted');
    clock.advance(1);
    expect(codes()).toContain('transport-demoted');
  });

  it('keeps pinging every 20 s when the announced idleTimeout leaves room', async () => {
    const client = make();
    client.subscribe('chat', () => {});
    await sockets(1);
    lastSocket().accept();
    lastSocket().frame({ type: 'open', cursors: {}, timings: { idleTimeout: 120_000 } });
    clock.advance(19_999);
    expect(lastSocket().sent.filter((f) => f.type === 'ping')).toHaveLength(0);
    clock.advance(1);
    expect(lastSocket().sent.filter((f) => f.type === 'ping')).toHaveLength(1);
  });
});

describe('fallback', () => {
  it('falls back to streaming when the WebSocket closes before open', async () => {
    const client = make();
    client.subscribe('chat', () => {});
    await sockets(1);
    lastSocket().die(1006);
    const fallback = diagnostics.find((d) => d.code === 'transport-fallback');
    expect(fallback?.message).toMatch(
      /WebSocket closed before open: a proxy that refuses upgrades/,
    );
    expect(fallback?.detail).toMatchObject({ from: 'websocket', to: 'stream' });
    await streamCount(1);
    liveStream().event('open', { cursors: { chat: '1' } });
    await vi.waitFor(() => expect(transportOf(client)).toBe('stream'));
  });

  it('falls back when no open arrives within openTimeout, down to long-poll, which never fails over', async () => {
    const client = make({ openTimeout: 2000 });
    client.subscribe('chat', () => {});
    await sockets(1);
    lastSocket().accept();
    clock.advance(1999);
    expect(codes()).not.toContain('transport-fallback');
    clock.advance(1);
    expect(lastSocket().closedByClient).toBe(true);
    await streamCount(1);
    clock.advance(2000);
    await vi.waitFor(() => expect(net.polls).toHaveLength(1));
    expect(streams[0]?.aborted).toBe(true);
    expect(
      diagnostics.filter((d) => d.code === 'transport-fallback').map((d) => d.message),
    ).toEqual([
      'no open event in 2 s: a buffering proxy?: now stream',
      'no open event in 2 s: a buffering proxy?: now longpoll',
    ]);
    net.last().respond(503);
    await vi.waitFor(() => expect(client.getState().status).toBe('reconnecting'));
    expect(codes().filter((c) => c === 'transport-fallback')).toHaveLength(2);
    nextTimer();
    await vi.waitFor(() => expect(net.polls).toHaveLength(2));
    net.last().respond(200, { cursors: { chat: '1' } });
    await vi.waitFor(() => expect(transportOf(client)).toBe('longpoll'));
  });

  it('falls back from a stream that fails before open', async () => {
    streamAnswer = 'refuse';
    const client = make({ transports: ['stream', 'longpoll'] });
    client.subscribe('chat', () => {});
    await vi.waitFor(() => expect(net.polls).toHaveLength(1));
    expect(diagnostics.find((d) => d.code === 'transport-fallback')?.detail).toMatchObject({
      from: 'stream',
      to: 'longpoll',
    });
    net.last().respond(200, {});
    await vi.waitFor(() => expect(transportOf(client)).toBe('longpoll'));
  });
});

describe('remembered transport', () => {
  /** A client whose WebSocket dies, now on streaming; closed unless `keep`. */
  async function fallBackToStream(options: CometClientOptions = {}, keep = false) {
    const first = make(options);
    first.subscribe('chat', () => {});
    await sockets(1);
    lastSocket().die();
    await streamCount(1);
    liveStream().event('open', { cursors: {} });
    await vi.waitFor(() => expect(transportOf(first)).toBe('stream'));
    if (!keep) first.close();
    return first;
  }

  it('starts a second client straight on the transport that worked', async () => {
    await fallBackToStream();
    expect(JSON.parse(storage.data.get(`cometkit:transport:${BASE}`) ?? '')).toMatchObject({
      name: 'stream',
    });
    const second = make();
    second.subscribe('chat', () => {});
    await streamCount(2);
    expect(FakeSocket.all).toHaveLength(1);
    expect(codes()).toContain('transport-remembered');
  });

  it('still remembers it within transportMemoryTtl (59 minutes of the default hour)', async () => {
    await fallBackToStream();
    clock.advance(59 * 60_000);
    const second = make();
    second.subscribe('chat', () => {});
    await streamCount(2);
    expect(FakeSocket.all).toHaveLength(1);
    expect(diagnostics.find((d) => d.code === 'transport-remembered')?.detail).toMatchObject({
      transport: 'stream',
      ageMs: 59 * 60_000,
    });
  });

  it('forgets it after transportMemoryTtl', async () => {
    await fallBackToStream();
    clock.advance(3_600_000);
    const second = make();
    second.subscribe('chat', () => {});
    await sockets(2);
    expect(second.getState()).toMatchObject({ transport: 'websocket' });
    expect(codes()).not.toContain('transport-remembered');
  });

  it('writes the memory again during a long session, so a reload after the TTL still starts there', async () => {
    // No watchdog or probe fires while the clock jumps: the stream stays open for 40 minutes.
    const first = await fallBackToStream({ watchdogGrace: 3_600_000 }, true);
    clock.advance(40 * 60_000);
    // The stream's time cap: the client opens the next one, still on streaming.
    liveStream().end();
    await streamCount(2);
    liveStream().event('open', { cursors: {} });
    await vi.waitFor(() =>
      expect(JSON.parse(storage.data.get(`cometkit:transport:${BASE}`) ?? '')).toEqual({
        name: 'stream',
        at: clock.now(),
        wait: 25_000,
      }),
    );
    first.close();
    // 80 minutes after the first write, 40 after the second.
    clock.advance(40 * 60_000);
    const second = make();
    second.subscribe('chat', () => {});
    await streamCount(3);
    expect(FakeSocket.all).toHaveLength(1);
    expect(codes()).toContain('transport-remembered');
  });

  it('works without storage', async () => {
    const client = make({ environment: { storage: () => undefined } });
    client.subscribe('chat', () => {});
    await sockets(1);
    openSocket(lastSocket());
    expect(transportOf(client)).toBe('websocket');
  });
});

describe('demotion', () => {
  it('demotes a WebSocket that dies soon after opening three times in a row', async () => {
    const client = make();
    client.subscribe('chat', () => {});
    for (let i = 1; i <= 3; i++) {
      await sockets(i);
      openSocket(lastSocket());
      lastSocket().die(1006);
      if (i < 3) {
        expect(codes()).not.toContain('transport-demoted');
        nextTimer();
      }
    }
    expect(diagnostics.find((d) => d.code === 'transport-demoted')?.detail).toMatchObject({
      from: 'websocket',
      to: 'stream',
      reason: 'early-deaths',
    });
    await streamCount(1);
    liveStream().event('open', { cursors: {} });
    await vi.waitFor(() => expect(transportOf(client)).toBe('stream'));
  });

  it('does not demote a WebSocket whose deaths are far apart', async () => {
    const client = make();
    client.subscribe('chat', () => {});
    for (let i = 1; i <= 4; i++) {
      await sockets(i);
      openSocket(lastSocket());
      clock.advance(i % 2 === 0 ? 11_000 : 0);
      // Keep the connection answering pings while time passes.
      lastSocket().frame({ type: 'pong' });
      lastSocket().die(1006);
      nextTimer();
    }
    await sockets(5);
    expect(codes()).not.toContain('transport-demoted');
    expect(client.getState()).toMatchObject({ transport: 'websocket' });
  });

  it('demotes a WebSocket that misses a pong for 10 s', async () => {
    const client = make();
    client.subscribe('chat', () => {});
    await sockets(1);
    openSocket(lastSocket());
    clock.advance(20_000);
    clock.advance(9_999);
    expect(codes()).not.toContain('transport-demoted');
    clock.advance(1);
    expect(lastSocket().closedByClient).toBe(true);
    expect(diagnostics.find((d) => d.code === 'transport-demoted')?.detail).toMatchObject({
      reason: 'silent',
    });
    await streamCount(1);
  });
});

describe('upgrade', () => {
  it('moves back up to WebSocket without a gap: nothing lost, nothing repeated', async () => {
    const client = make({ upgradeInterval: 20_000 });
    const got: unknown[] = [];
    client.subscribe('chat', (data) => got.push(data));
    await sockets(1);
    lastSocket().die();
    await streamCount(1);
    const stream = liveStream();
    const m = (id: string) => ({ topic: 'chat', id, data: id });
    stream.event('open', { cursors: { chat: '0' } });
    stream.event('messages', { messages: [m('1')], cursors: { chat: '1' } });
    await vi.waitFor(() => expect(got).toEqual(['1']));
    clock.advance(20_000);
    await sockets(2);
    const probe = lastSocket();
    probe.accept();
    await vi.waitFor(() => expect(probe.polls()[0]).toMatchObject({ cursors: { chat: '1' } }));
    // The stream goes on meanwhile; the probe starts from the cursor it was given.
    stream.event('messages', { messages: [m('2')], cursors: { chat: '2' } });
    await vi.waitFor(() => expect(got).toEqual(['1', '2']));
    expect(transportOf(client)).toBe('stream');
    probe.frame({ type: 'open', cursors: { chat: '1' } });
    probe.frame({ type: 'messages', messages: [m('2'), m('3')], cursors: { chat: '3' } });
    expect(transportOf(client)).toBe('websocket');
    expect(codes()).toContain('transport-upgrade');
    await vi.waitFor(() => expect(stream.aborted).toBe(true));
    expect(got).toEqual(['1', '2', '3']);
  });

  it('stays on the fallback when the probe does not open, and tries again later', async () => {
    const client = make({ upgradeInterval: 20_000, openTimeout: 1000, watchdogGrace: 60_000 });
    client.subscribe('chat', () => {});
    await sockets(1);
    lastSocket().die();
    await streamCount(1);
    liveStream().event('open', { cursors: {} });
    await vi.waitFor(() => expect(transportOf(client)).toBe('stream'));
    clock.advance(20_000);
    await sockets(2);
    lastSocket().die();
    expect(codes()).toContain('transport-probe-failed');
    expect(transportOf(client)).toBe('stream');
    expect(liveStream()).toBe(streams[0]);
    clock.advance(20_000);
    await sockets(3);
  });
});

describe('streaming transport', () => {
  it('opens a new stream with its cursors at once when the server ends one', async () => {
    const client = make({ transports: ['stream', 'longpoll'] });
    const got: unknown[] = [];
    client.subscribe('chat', (data) => got.push(data));
    await streamCount(1);
    expect(streams[0]?.body).toMatchObject({ v: 1, topics: ['chat'] });
    streams[0]?.event('open', { cursors: { chat: '0' } });
    streams[0]?.event('messages', {
      messages: [{ topic: 'chat', id: '1', data: 'a' }],
      cursors: { chat: '1' },
    });
    await vi.waitFor(() => expect(got).toEqual(['a']));
    streams[0]?.end();
    await streamCount(2);
    expect(streams[1]?.body.cursors).toEqual({ chat: '1' });
    expect(client.getState()).toEqual({ status: 'connected', transport: 'stream' });
  });

  it('opens a new stream and aborts the old one when the topics change', async () => {
    const client = make({ transports: ['stream', 'longpoll'] });
    client.subscribe('chat', () => {});
    await streamCount(1);
    streams[0]?.event('open', { cursors: {} });
    await vi.waitFor(() => expect(transportOf(client)).toBe('stream'));
    client.subscribe('typing', () => {});
    await streamCount(2);
    expect(streams[1]?.body.topics).toEqual(['chat', 'typing']);
    await vi.waitFor(() => expect(streams[0]?.aborted).toBe(true));
  });

  it('treats a stream silent past two default heartbeats and watchdogGrace as dead', async () => {
    const client = make({ transports: ['stream', 'longpoll'], watchdogGrace: 5000 });
    client.subscribe('chat', () => {});
    await streamCount(1);
    streams[0]?.event('open', { cursors: {} });
    await vi.waitFor(() => expect(transportOf(client)).toBe('stream'));
    // No timings announced: the default heartbeat (15 s), twice, plus the 5 s grace.
    clock.advance(34_999);
    expect(codes()).not.toContain('transport-demoted');
    clock.advance(1);
    expect(diagnostics.find((d) => d.code === 'transport-demoted')?.detail).toMatchObject({
      from: 'stream',
      reason: 'silent',
    });
    await vi.waitFor(() => expect(net.polls).toHaveLength(1));
  });

  it('keeps a stream whose server announced a slower heartbeat, and aborts it once it is silent past that', async () => {
    const client = make({ transports: ['stream', 'longpoll'], watchdogGrace: 10_000 });
    client.subscribe('chat', () => {});
    await streamCount(1);
    streams[0]?.event('open', { cursors: {}, timings: { heartbeat: 40_000 } });
    await vi.waitFor(() => expect(transportOf(client)).toBe('stream'));
    // Dead at 25 s under the old hard-coded 15 s heartbeat; alive now until 2 x 40 s + 10 s.
    clock.advance(25_000);
    clock.advance(64_999);
    expect(codes()).not.toContain('transport-demoted');
    expect(streams[0]?.aborted).toBe(false);
    clock.advance(1);
    expect(codes()).toContain('transport-demoted');
    // Demoted to long-poll: the stream's request is really aborted, not left to the server.
    await vi.waitFor(() => expect(streams[0]?.aborted).toBe(true));
    await vi.waitFor(() => expect(net.polls).toHaveLength(1));
  });

  it('counts the silence from the last chunk, heartbeats included', async () => {
    const client = make({ transports: ['stream', 'longpoll'], watchdogGrace: 10_000 });
    client.subscribe('chat', () => {});
    await streamCount(1);
    streams[0]?.event('open', { cursors: {}, timings: { heartbeat: 40_000 } });
    await vi.waitFor(() => expect(transportOf(client)).toBe('stream'));
    for (let i = 0; i < 3; i++) {
      clock.advance(40_000);
      streams[0]?.comment('hb');
      await vi.waitFor(() => expect(streams[0]?.chunks).toBe(i + 2));
      // Read by the client: the watchdog starts again from here.
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    clock.advance(89_999);
    expect(codes()).not.toContain('transport-demoted');
    expect(transportOf(client)).toBe('stream');
  });
});

describe('send over WebSocket', () => {
  async function connected() {
    const client = make();
    client.subscribe('chat', () => {});
    await sockets(1);
    openSocket(lastSocket());
    return client;
  }
  const sendFrames = (socket: FakeSocket) => socket.sent.filter((f) => f.type === 'send');

  it('sends a send frame with the client-made id and resolves on ack', async () => {
    const client = await connected();
    const sent = client.send('chat', { text: 'hi' });
    await vi.waitFor(() => expect(sendFrames(lastSocket())).toHaveLength(1));
    const frame = sendFrames(lastSocket())[0];
    expect(frame).toEqual({
      type: 'send',
      topic: 'chat',
      id: 'uuid-2',
      data: { text: 'hi' },
      sessionGuid: client.sessionGuid,
    });
    lastSocket().frame({ type: 'ack', id: 'uuid-2', messageId: 'm7' });
    await expect(sent).resolves.toBe('m7');
    expect(net.sends).toHaveLength(0);
  });

  it('puts the headers on every poll frame, and on a send frame only once they changed', async () => {
    let token = 'one';
    const client = make({ headers: () => ({ authorization: `Bearer ${token}` }) });
    client.subscribe('chat', () => {});
    await sockets(1);
    openSocket(lastSocket());
    await vi.waitFor(() =>
      expect(lastSocket().polls()[0]).toMatchObject({ headers: { authorization: 'Bearer one' } }),
    );
    const first = client.send('chat', 1);
    await vi.waitFor(() => expect(sendFrames(lastSocket())).toHaveLength(1));
    expect(sendFrames(lastSocket())[0]).not.toHaveProperty('headers');
    lastSocket().frame({ type: 'ack', id: 'uuid-2', messageId: 'm1' });
    await first;
    // Refreshed while the socket is open: it goes out on the same socket with the next frame.
    token = 'two';
    client.send('chat', 2).catch(() => {});
    await vi.waitFor(() => expect(sendFrames(lastSocket())).toHaveLength(2));
    expect(sendFrames(lastSocket())[1]).toMatchObject({
      headers: { authorization: 'Bearer two' },
    });
    expect(FakeSocket.all).toHaveLength(1);
  });

  it('re-sends a send nacked unauthorized with the auth hook headers, on the same socket', async () => {
    const client = make({ auth: () => ({ authorization: 'Bearer fresh' }) });
    client.subscribe('chat', () => {});
    await sockets(1);
    openSocket(lastSocket());
    const sent = client.send('chat', 1);
    await vi.waitFor(() => expect(sendFrames(lastSocket())).toHaveLength(1));
    lastSocket().frame({
      type: 'nack',
      id: 'uuid-2',
      error: { code: 'unauthorized', message: 'expired' },
    });
    await vi.waitFor(() => expect(sendFrames(lastSocket())).toHaveLength(2));
    expect(sendFrames(lastSocket())[1]).toMatchObject({
      id: 'uuid-2',
      headers: { authorization: 'Bearer fresh' },
    });
    lastSocket().frame({ type: 'ack', id: 'uuid-2', messageId: 'm1' });
    await expect(sent).resolves.toBe('m1');
  });

  it('polls a topic refused on the socket again on the same socket after the auth hook', async () => {
    const client = make({ auth: () => ({ authorization: 'Bearer fresh' }) });
    client.subscribe('user:ann', () => {});
    await sockets(1);
    lastSocket().accept();
    lastSocket().frame({
      type: 'open',
      cursors: {},
      errors: { 'user:ann': { code: 'unauthorized', message: 'expired' } },
    });
    await vi.waitFor(() => expect(lastSocket().polls()).toHaveLength(2));
    expect(lastSocket().polls()[1]).toMatchObject({
      topics: ['user:ann'],
      headers: { authorization: 'Bearer fresh' },
    });
    expect(FakeSocket.all).toHaveLength(1);
  });

  it('rejects on nack like the HTTP answer', async () => {
    const client = await connected();
    const sent = client.send('chat', 1);
    await vi.waitFor(() => expect(sendFrames(lastSocket())).toHaveLength(1));
    lastSocket().frame({
      type: 'nack',
      id: 'uuid-2',
      error: { code: 'forbidden', message: 'not yours' },
    });
    await expect(sent).rejects.toSatisfy(
      (e) => isHttpError(e) && e.status === 403 && e.message === 'not yours',
    );
  });

  it('retries with the same id over whatever is current when the socket is lost before the ack', async () => {
    const client = await connected();
    const sent = client.send('chat', 1);
    await vi.waitFor(() => expect(sendFrames(lastSocket())).toHaveLength(1));
    lastSocket().die(1006);
    nextTimer();
    await sockets(2);
    openSocket(lastSocket());
    await vi.waitFor(() => expect(sendFrames(lastSocket())).toHaveLength(1));
    expect(sendFrames(lastSocket())[0]?.id).toBe('uuid-2');
    lastSocket().frame({ type: 'ack', id: 'uuid-2', messageId: 'm1' });
    await expect(sent).resolves.toBe('m1');
  });

  it('sends as POST while the transport is not a WebSocket', async () => {
    const client = make({ transports: ['stream', 'longpoll'] });
    client.subscribe('chat', () => {});
    await streamCount(1);
    streams[0]?.event('open', { cursors: {} });
    await expect(client.send('chat', 1)).resolves.toBe('m1');
    expect(net.sends[0]?.body).toMatchObject({ id: 'uuid-2', data: 1 });
  });
});

describe('late timers (a hidden tab, a frozen page)', () => {
  it('does not demote a WebSocket whose pong watchdog fired late: it opens a new one at once', async () => {
    const client = make();
    client.subscribe('chat', () => {});
    await sockets(1);
    openSocket(lastSocket(), { chat: '3' });
    clock.advance(20_000);
    expect(lastSocket().sent.at(-1)).toEqual({ type: 'ping' });
    // The page froze right after the ping: the pong watchdog fires a minute late.
    clock.jump(70_000);
    expect(codes()).toContain('timer-late');
    expect(codes()).not.toContain('transport-demoted');
    await sockets(2);
    lastSocket().accept();
    await vi.waitFor(() =>
      expect(lastSocket().polls()[0]).toMatchObject({ cursors: { chat: '3' } }),
    );
    lastSocket().frame({ type: 'open', cursors: { chat: '3' } });
    expect(transportOf(client)).toBe('websocket');
  });

  it('does not demote a stream whose silence watchdog fired late', async () => {
    const client = make({ transports: ['stream', 'longpoll'], watchdogGrace: 5000 });
    client.subscribe('chat', () => {});
    await streamCount(1);
    streams[0]?.event('open', { cursors: {} });
    await vi.waitFor(() => expect(transportOf(client)).toBe('stream'));
    clock.jump(5 * 60_000);
    expect(codes()).toContain('timer-late');
    expect(codes()).not.toContain('transport-demoted');
    await streamCount(2);
    expect(net.polls).toHaveLength(0);
  });

  it('does not fall back when the open timeout fired late: it opens the same transport again', async () => {
    make().subscribe('chat', () => {});
    await sockets(1);
    lastSocket().accept();
    clock.jump(60_000);
    expect(codes()).toContain('timer-late');
    expect(codes()).not.toContain('transport-fallback');
    await sockets(2);
  });
});
