/**
 * Property-based fuzzing of the client against hostile answers (fast-check, seeded, bounded):
 * poll answers, stream events and WebSocket frames that are not JSON, of the wrong shape, huge
 * or deeply nested, with any status and `Retry-After`. Whatever comes, no exception escapes to
 * the page, no message id is delivered twice on a topic (unless the server reset that topic in
 * between), and the client's request rate stays bounded by what it was given (a message
 * delivered may be followed at once; anything else is backed off). The network is an injected
 * `fetch` and WebSocket, time the injected manual clock, so each case runs in milliseconds.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createCometClient } from '../src/client';
import type { TransportName } from '../src/protocol';
import { createClock } from './helpers';

const BASE = 'http://fuzz.test/api/comet';
const TOPICS = ['chat', 'news'];

const topic = fc.constantFrom('chat', 'news', 'other', '', '__proto__');
const id = fc.constantFrom('a', 'b', 'c', '1', '2', '');
const message = fc.record(
  { topic, id, data: fc.jsonValue({ maxDepth: 3 }) },
  { requiredKeys: ['topic'] },
);
/** Something that looks like an answer, often with a wrong part. */
const answerLike = fc.record(
  {
    messages: fc.oneof(fc.array(message, { maxLength: 5 }), fc.jsonValue({ maxDepth: 2 })),
    cursors: fc.oneof(fc.dictionary(topic, id), fc.jsonValue({ maxDepth: 1 })),
    resets: fc.oneof(fc.array(topic, { maxLength: 2 }), fc.jsonValue({ maxDepth: 1 })),
    errors: fc.oneof(
      fc.dictionary(topic, fc.record({ code: fc.string(), message: fc.string() })),
      fc.jsonValue({ maxDepth: 1 }),
    ),
    reconnect: fc.boolean(),
    topic,
    data: fc.jsonValue({ maxDepth: 2 }),
    timings: fc.dictionary(
      fc.constantFrom('heartbeat', 'idleTimeout'),
      fc.oneof(fc.double(), fc.integer()),
    ),
  },
  { requiredKeys: [] },
);
/** A body: not JSON, any JSON, an answer-like object, deeply nested, or huge. */
const body = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.json({ maxDepth: 3 }),
  answerLike.map((a) => JSON.stringify(a)),
  answerLike.map((a) => JSON.stringify(a)),
  fc.integer({ min: 1, max: 20_000 }).map((depth) => `${'['.repeat(depth)}${']'.repeat(depth)}`),
  fc
    .integer({ min: 1, max: 200_000 })
    .map((n) =>
      JSON.stringify({ messages: [{ topic: 'chat', id: `big${n}`, data: 'x'.repeat(n) }] }),
    ),
);
const status = fc.constantFrom(200, 200, 200, 200, 204, 400, 401, 404, 408, 429, 500, 503, 504);
const retryAfter = fc.option(
  fc.oneof(
    fc.constantFrom('0', '1', '99999999999', '-1', 'soon', 'Wed, 21 Oct 2015 07:28:00 GMT'),
    fc.nat().map(String),
  ),
  { nil: undefined },
);
const answer = fc.record({ status, body, retryAfter });
const frameKind = fc.constantFrom('open', 'messages', 'pong', 'ack', 'nack', 'error', 'zzz');
/** A stream event or a WebSocket frame: an answer-like payload under a type, or anything. */
const payload = fc.oneof(
  fc
    .tuple(frameKind, answerLike)
    .map(([type, a]) => ({ type, text: JSON.stringify({ ...a, type }) })),
  fc.tuple(frameKind, body).map(([type, text]) => ({ type, text })),
);

interface Run {
  requests: number;
  delivered: number;
  resets: number;
  escaped: unknown[];
  repeats: string[];
  elapsed: number;
}

/** Runs one client against the scripted answers for at most 20 s of simulated time. */
async function run(
  transports: TransportName[],
  answers: { status: number; body: string; retryAfter?: string }[],
  events: { type: string; text: string }[],
): Promise<Run> {
  const clock = createClock();
  const start = clock.now();
  const result: Run = {
    requests: 0,
    delivered: 0,
    resets: 0,
    escaped: [],
    repeats: [],
    elapsed: 0,
  };
  let n = 0;
  const next = () => answers[n++ % answers.length] as (typeof answers)[number];
  const encoder = new TextEncoder();
  const fetch = async (input: RequestInfo | URL, init?: RequestInit) => {
    result.requests++;
    const request = input instanceof Request ? input : new Request(input, init);
    const { status: code, body: text, retryAfter: after } = next();
    const headers = new Headers({ 'content-type': 'application/json' });
    if (after !== undefined) headers.set('retry-after', after);
    if (request.url.endsWith('/_stream') && code === 200) {
      const sse = events.map((e) => `event: ${e.type}\ndata: ${e.text.replace(/\n/g, '')}\n\n`);
      return new Response(encoder.encode(sse.join('')), {
        headers: { 'content-type': 'text/event-stream' },
      });
    }
    return new Response(code === 204 ? null : text, { status: code, headers });
  };
  class Socket {
    readyState = 0;
    onopen: (() => void) | null = null;
    onmessage: ((event: { data: unknown }) => void) | null = null;
    onclose: ((event: { code: number; reason: string }) => void) | null = null;
    onerror: (() => void) | null = null;
    #frames = 0;
    constructor() {
      result.requests++;
      queueMicrotask(() => {
        this.readyState = 1;
        this.onopen?.();
      });
    }
    send() {
      // Every frame the client sends is answered with the next scripted ones, then a close.
      if (this.#frames++ > 0) return;
      queueMicrotask(() => {
        for (const e of events) this.onmessage?.({ data: e.text });
        this.readyState = 3;
        this.onclose?.({ code: [1000, 1006, 1011][n++ % 3] as number, reason: '' });
      });
    }
    close() {
      this.readyState = 3;
    }
  }
  const onError = (error: unknown) => result.escaped.push(error);
  process.on('uncaughtException', onError);
  process.on('unhandledRejection', onError);
  let uuid = 0;
  const client = createCometClient({
    url: BASE,
    transports,
    environment: {
      fetch: fetch as typeof globalThis.fetch,
      setTimeout: clock.setTimeout,
      clearTimeout: clock.clearTimeout,
      now: clock.now,
      random: () => 0.5,
      randomUUID: () => `uuid-${++uuid}`,
      storage: () => undefined,
      WebSocket: () => Socket as unknown as typeof WebSocket,
    },
  });
  const seen = new Map<string, Set<string>>();
  client.on('reset', ({ topic: reset }) => {
    result.resets++;
    seen.delete(reset);
  });
  client.on('error', () => {});
  try {
    for (const name of TOPICS)
      client.subscribe(name, (_data, m) => {
        result.delivered++;
        if (m.id === undefined) return;
        const ids = seen.get(name) ?? new Set();
        seen.set(name, ids);
        if (ids.has(m.id)) result.repeats.push(`${name}/${m.id}`);
        ids.add(m.id);
      });
    for (let step = 0; step < 80; step++) {
      for (let turn = 0; turn < 4; turn++) await new Promise((resolve) => setImmediate(resolve));
      const delay = clock.pending()[0];
      if (delay === undefined || clock.now() - start + delay > 20_000) break;
      clock.advance(delay);
    }
    result.elapsed = clock.now() - start;
  } finally {
    client.close();
    await new Promise((resolve) => setImmediate(resolve));
    process.off('uncaughtException', onError);
    process.off('unhandledRejection', onError);
  }
  return result;
}

let runs = 0;
describe('the client against hostile answers (fast-check)', () => {
  it('lets no exception escape, delivers nothing twice and keeps a bounded request rate', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom<TransportName[]>(
          ['longpoll'],
          ['stream', 'longpoll'],
          ['websocket', 'stream', 'longpoll'],
        ),
        fc.array(answer, { minLength: 1, maxLength: 6 }),
        fc.array(payload, { maxLength: 6 }),
        async (transports, answers, events) => {
          const r = await run(transports, answers, events);
          runs++;
          expect(r.escaped).toEqual([]);
          expect(r.repeats).toEqual([]);
          // At once after a delivery, a reset or a refusal (the topic set changes); otherwise
          // at most a few fast tries, then backoff: never a tight loop.
          const allowed = 8 + 2 * (r.delivered + r.resets) + (4 * r.elapsed) / 1000;
          expect(r.requests).toBeLessThanOrEqual(allowed);
        },
      ),
      {
        seed: 13_16,
        numRuns: 2000,
        interruptAfterTimeLimit: 25_000,
        markInterruptAsFailure: false,
      },
    );
    // Bounded in time on a busy machine; still thousands of cases on an idle one.
    expect(runs).toBeGreaterThan(200);
  }, 60_000);
});
