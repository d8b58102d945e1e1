import { afterEach, describe, expect, it, vi } from 'vitest';
import type { Broker } from '../src/broker';
import { createMemoryBroker } from '../src/brokers/memory';
import { HOLD_TICK_MS } from '../src/engine/hold-timer';
import { poll, post, serve, stopAll } from './helpers';

/**
 * Waits, on real event-loop turns only, until exactly `n` polls are held: `expect.poll` and
 * `vi.waitFor` advance fake timers by their interval, which would move a fake clock the test
 * counts on. Bounded in turns.
 */
async function untilWaiting(comet: { stats(): { waiting: number } }, n: number) {
  for (let turn = 0; turn < 100_000 && comet.stats().waiting !== n; turn += 1) {
    await new Promise((resolve) => setImmediate(resolve));
  }
  expect(comet.stats().waiting).toBe(n);
}

afterEach(stopAll);

describe('long-poll handler', () => {
  it('answers a handshake at once with the current position of every topic', async () => {
    const { comet, base } = await serve();
    await comet.publish('chat', 'before');
    const answer = await post(base, poll(['chat', 'typing']));
    expect(answer.status).toBe(200);
    expect(answer.headers.get('content-type')).toMatch(/application\/json/);
    expect(answer.headers.get('cache-control')).toBe('no-store');
    expect(answer.body.messages).toBeUndefined();
    expect(Object.keys(answer.body.cursors ?? {})).toEqual(['chat', 'typing']);
    expect(answer.body.reconnect).toBeUndefined();
  });

  it('rewinds a handshake to the last count messages, then holds from after them', async () => {
    const { comet, base } = await serve();
    const ids: string[] = [];
    for (let i = 0; i < 10; i += 1) ids.push(await comet.publish('chat', i));
    const first = await post(base, { ...poll(['chat', 'other']), rewind: { chat: { count: 3 } } });
    expect(first.body.messages?.map((m) => m.data)).toEqual([7, 8, 9]);
    expect(first.body.cursors?.chat).toBe(ids[9]);
    const pending = post(base, poll(['chat'], { chat: first.body.cursors?.chat as string }));
    await expect.poll(() => comet.stats().waiting).toBe(1);
    const live = await comet.publish('chat', 10);
    expect((await pending).body.messages?.map((m) => m.id)).toEqual([live]);
  });

  it('rewinds only what was published in the last since ms, and ignores a rewind with a cursor', async () => {
    let time = 1_000_000;
    const { createMemoryBroker } = await import('../src/index');
    const { comet, base } = await serve({ broker: createMemoryBroker({ now: () => time }) });
    await comet.publish('chat', 'old');
    time += 60_000;
    const recent = await comet.publish('chat', 'recent');
    const rewound = await post(base, { ...poll(['chat']), rewind: { chat: { since: 30_000 } } });
    expect(rewound.body.messages?.map((m) => m.data)).toEqual(['recent']);
    const withCursor = await post(base, {
      ...poll(['chat'], { chat: recent }, 0),
      rewind: { chat: { count: 5 } },
    });
    expect(withCursor.body.messages).toBeUndefined();
    expect(withCursor.body).toMatchObject({ reconnect: true, cursors: { chat: recent } });
  });

  it('cuts a rewind that does not fit the answer budget to its newest messages, with no gap after', async () => {
    const { comet, base } = await serve({ maxAnswerBytes: 1024 });
    const ids: string[] = [];
    for (let i = 0; i < 5; i += 1) ids.push(await comet.publish('chat', 'x'.repeat(400)));
    const first = await post(base, { ...poll(['chat']), rewind: { chat: { count: 5 } } });
    const got = first.body.messages?.map((m) => m.id) ?? [];
    expect(got.length).toBeGreaterThanOrEqual(1);
    expect(got.length).toBeLessThan(5);
    expect(got).toEqual(ids.slice(5 - got.length));
    expect(first.body.cursors?.chat).toBe(ids[4]);
  });

  it('fills an answer to exactly maxAnswerBytes, counting multi-byte and escaped text in bytes', async () => {
    const broker = createMemoryBroker({ epoch: 'e' });
    const data = ['é"\n€'.repeat(120), 'ü\\'.repeat(100), 'plain'];
    const ids: string[] = [];
    for (const value of data) ids.push(await broker.publish('chat', value));
    // Each message as the answer carries it, with the comma between messages.
    const sizes = data.map(
      (value, index) =>
        Buffer.byteLength(JSON.stringify({ topic: 'chat', id: ids[index], data: value })) + 1,
    );
    const fits = (sizes[0] as number) + (sizes[1] as number);
    for (const [budget, taken] of [
      [fits, 2],
      [fits - 1, 1],
    ] as const) {
      const { base } = await serve({ broker, maxAnswerBytes: budget });
      const answer = await post(base, poll(['chat'], { chat: 'e-0' }, 0));
      expect({ budget, got: answer.body.messages?.map((m) => m.data) }).toEqual({
        budget,
        got: data.slice(0, taken),
      });
      expect(answer.body.cursors?.chat).toBe(ids[taken - 1]);
    }
  });

  it('answers a one-topic poll from the broker wire bytes, byte for byte as the usual path', async () => {
    const topic = 'room/chat:1';
    const raw = async (base: string, cursor: string, wait = 0) => {
      const response = await fetch(base, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(poll([topic], { [topic]: cursor }, wait)),
      });
      return { length: response.headers.get('content-length'), text: await response.text() };
    };
    // A small budget: several answers written as strings; a large one: one answer of more
    // than 16 KiB, written as bytes.
    for (const [maxAnswerBytes, least] of [
      [4096, 4],
      [1_000_000, 1],
    ] as const) {
      const memory = createMemoryBroker({ epoch: 'e' });
      // The same broker behind a `read` of its own: the server reads it message by message.
      const wrapped: Broker = {
        ...memory,
        read: (topic, cursor, limit) => memory.read(topic, cursor, limit),
      };
      const publish = (i: number) =>
        memory.publish(
          topic,
          i % 3 === 0 ? { i, text: 'é"\n€💬'.repeat(i) } : { i, pad: 'x'.repeat(i * 80) },
        );
      for (let i = 0; i < 30; i += 1) await publish(i);
      const servers = await Promise.all([
        serve({ broker: memory, maxAnswerBytes }),
        serve({ broker: wrapped, maxAnswerBytes }),
      ]);
      let cursor = 'e-0';
      let answers = 0;
      let largest = 0;
      for (; answers < 30; answers += 1) {
        const [wire, usual] = await Promise.all(servers.map(({ base }) => raw(base, cursor)));
        expect(wire).toEqual(usual);
        expect(Number(wire?.length)).toBe(Buffer.byteLength(wire?.text ?? ''));
        largest = Math.max(largest, Number(wire?.length));
        const body = JSON.parse(wire?.text ?? '{}') as {
          messages?: unknown[];
          cursors: Record<string, string>;
        };
        if (!body.messages) break;
        cursor = body.cursors[topic] as string;
      }
      expect({ maxAnswerBytes, enough: answers >= least, cursor }).toEqual({
        maxAnswerBytes,
        enough: true,
        cursor: 'e-30',
      });
      if (maxAnswerBytes > 16_384) expect(largest).toBeGreaterThan(16_384);
      // Held polls woken by one publish: the same bytes too.
      const held = servers.map(({ base }) => raw(base, cursor, 5_000));
      await Promise.all(servers.map(({ comet }) => untilWaiting(comet, 1)));
      await publish(30);
      const [wire, usual] = await Promise.all(held);
      expect(wire).toEqual(usual);
      expect(JSON.parse(wire?.text ?? '{}').cursors[topic]).toBe('e-31');
    }
  });

  it('refuses a malformed rewind with 400', async () => {
    const { base } = await serve();
    for (const rewind of [
      [],
      { chat: 5 },
      { chat: {} },
      { chat: { count: 0 } },
      { chat: { since: 1.5 } },
    ]) {
      const answer = await post(base, { ...poll(['chat']), rewind });
      expect({ rewind, status: answer.status }).toEqual({ rewind, status: 400 });
      expect(answer.body.error?.code).toBe('bad_request');
    }
  });

  it('answers at once with messages after the cursor, and their new position', async () => {
    const { comet, base } = await serve();
    const { cursors } = (await post(base, poll(['chat']))).body;
    await comet.publish('chat', 1);
    const id = await comet.publish('chat', 2);
    const answer = await post(base, poll(['chat'], cursors));
    expect(answer.body.messages?.map((m) => m.data)).toEqual([1, 2]);
    expect(answer.body.cursors).toEqual({ chat: id });
  });

  it('holds until a publish and answers it', async () => {
    const { comet, base } = await serve();
    const { cursors } = (await post(base, poll(['chat']))).body;
    const pending = post(base, poll(['chat'], cursors));
    await expect.poll(() => comet.stats().waiting).toBe(1);
    const id = await comet.publish('chat', { text: 'hi' });
    const answer = await pending;
    expect(answer.body.messages).toEqual([{ topic: 'chat', id, data: { text: 'hi' } }]);
    expect(answer.body.cursors).toEqual({ chat: id });
  });

  it('writes a woken answer, header and body, in one socket write', async () => {
    const { comet, base, started } = await serve();
    const writes: unknown[] = [];
    started.server.on('connection', (socket) => {
      const write = socket.write.bind(socket) as (...args: unknown[]) => boolean;
      socket.write = ((...args: unknown[]) => {
        writes.push(args[0]);
        return write(...args);
      }) as typeof socket.write;
    });
    const { cursors } = (await post(base, poll(['chat']))).body;
    const pending = post(base, poll(['chat'], cursors));
    await expect.poll(() => comet.stats().waiting).toBe(1);
    writes.length = 0;
    const id = await comet.publish('chat', 'hi');
    expect((await pending).body.messages).toEqual([{ topic: 'chat', id, data: 'hi' }]);
    // Node's `end` adds an empty write that carries its callback: only bytes count.
    const sent = writes.map(String).filter((chunk) => chunk.length > 0);
    expect(sent).toHaveLength(1);
    expect(sent[0]).toMatch(/^HTTP\/1\.1 200 OK\r\n[\s\S]*\r\n\r\n\{"messages"/);
  });

  it('answers a large woken body with multi-byte text intact (its byte length, not its length)', async () => {
    const { comet, base } = await serve();
    const { cursors } = (await post(base, poll(['chat']))).body;
    const pending = post(base, poll(['chat'], cursors));
    await expect.poll(() => comet.stats().waiting).toBe(1);
    const small = 'é€😀'.repeat(10);
    const large = 'é€😀'.repeat(5_000);
    await Promise.all([comet.publish('chat', small), comet.publish('chat', large)]);
    const answer = await pending;
    expect(answer.body.messages?.map((m) => m.data)).toEqual([small, large]);
  });

  it('reads a woken poll through the read of a broker that wraps the memory broker', async () => {
    const memory = createMemoryBroker();
    // Spreading copies the memory broker's `readNow`; its `read` is replaced, so it must win.
    const broker: Broker = {
      ...memory,
      async read(topic, cursor, limit) {
        const result = await memory.read(topic, cursor, limit);
        const messages = result.messages.map((m) => ({
          topic: m.topic,
          id: m.id,
          data: 'wrapped',
        }));
        return { ...result, messages };
      },
    };
    const { comet, base } = await serve({ broker });
    const { cursors } = (await post(base, poll(['chat']))).body;
    const pending = post(base, poll(['chat'], cursors));
    await untilWaiting(comet, 1);
    await comet.publish('chat', 'raw');
    expect((await pending).body.messages?.map((m) => m.data)).toEqual(['wrapped']);
  });

  it('sends a burst published in one turn as one answer', async () => {
    const { comet, base } = await serve();
    const { cursors } = (await post(base, poll(['a', 'b']))).body;
    const pending = post(base, poll(['a', 'b'], cursors));
    await expect.poll(() => comet.stats().waiting).toBe(1);
    await Promise.all([comet.publish('a', 1), comet.publish('b', 2), comet.publish('a', 3)]);
    const answer = await pending;
    expect(answer.body.messages?.map((m) => [m.topic, m.data])).toEqual([
      ['a', 1],
      ['a', 3],
      ['b', 2],
    ]);
  });

  it('waits the coalescing window after a wake-up so later messages join the batch', async () => {
    const { comet, base } = await serve({ coalesceMs: 200 });
    const { cursors } = (await post(base, poll(['a']))).body;
    const pending = post(base, poll(['a'], cursors));
    await expect.poll(() => comet.stats().waiting).toBe(1);
    // The window runs on a fake clock: a loaded machine cannot stretch the gap past it, and
    // real I/O turns in between would let a broken window answer with the first message alone.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    try {
      await comet.publish('a', 1);
      vi.advanceTimersByTime(199);
      for (let turn = 0; turn < 5; turn += 1) await new Promise((r) => setImmediate(r));
      expect(comet.stats().waiting).toBe(1);
      await comet.publish('a', 2);
      vi.advanceTimersByTime(1);
    } finally {
      vi.useRealTimers();
    }
    expect((await pending).body.messages?.map((m) => m.data)).toEqual([1, 2]);
  });

  it('ends the hold with reconnect and the unchanged cursors, capped by maxWait', async () => {
    const { base } = await serve({ maxWait: 50 });
    const { cursors } = (await post(base, poll(['chat']))).body;
    const answer = await post(base, poll(['chat'], cursors, 60_000));
    expect(answer.body).toEqual({ cursors, reconnect: true });
  });

  it('ends each hold at its deadline (the shared hold timer), never early', async () => {
    const { comet, base } = await serve({ maxWait: 60_000 });
    const { cursors } = (await post(base, poll(['chat']))).body;
    // Only timers and the clocks are fake: the requests still travel over loopback.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date', 'performance'] });
    try {
      const held = [5000, 5000, 8000].map((wait) => post(base, poll(['chat'], cursors, wait)));
      let settled = 0;
      for (const answer of held) answer.then(() => (settled += 1));
      await untilWaiting(comet, 3);
      vi.advanceTimersByTime(4999);
      for (let turn = 0; turn < 5; turn += 1) await new Promise((r) => setImmediate(r));
      expect(comet.stats().waiting).toBe(3);
      vi.advanceTimersByTime(HOLD_TICK_MS);
      const [first, second] = await Promise.all(held.slice(0, 2));
      expect(first?.body).toEqual({ cursors, reconnect: true });
      expect(second?.body).toEqual({ cursors, reconnect: true });
      expect(settled).toBe(2);
      expect(comet.stats().waiting).toBe(1);
      vi.advanceTimersByTime(3000);
      expect((await held[2])?.body).toEqual({ cursors, reconnect: true });
    } finally {
      vi.useRealTimers();
    }
  });

  it('keeps hold deadlines on the monotonic clock: a wall-clock step back does not stretch them', async () => {
    const { comet, base } = await serve({ maxWait: 60_000 });
    const { cursors } = (await post(base, poll(['chat']))).body;
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date', 'performance'] });
    try {
      const held = post(base, poll(['chat'], cursors, 5000));
      await untilWaiting(comet, 1);
      // An NTP correction or a resumed VM: the wall clock goes back an hour mid-hold.
      vi.setSystemTime(Date.now() - 3_600_000);
      vi.advanceTimersByTime(5000 + HOLD_TICK_MS);
      await untilWaiting(comet, 0);
      expect((await held).body).toEqual({ cursors, reconnect: true });
    } finally {
      vi.useRealTimers();
    }
  });

  it('answers wait 0 at once with reconnect', async () => {
    const { base } = await serve();
    const { cursors } = (await post(base, poll(['chat']))).body;
    expect((await post(base, poll(['chat'], cursors, 0))).body).toEqual({
      cursors,
      reconnect: true,
    });
  });

  it('reports a cursor from another epoch in resets, resuming before the first message of this one', async () => {
    const { comet, base } = await serve();
    const id = await comet.publish('chat', 'x');
    const answer = await post(base, poll(['chat', 'other'], { chat: 'oldepoch-4', other: 'z' }));
    expect(answer.body.resets).toEqual(['chat', 'other']);
    expect(answer.body.messages).toBeUndefined();
    // The next poll from that position gets the message published in this epoch.
    const next = await post(base, poll(['chat'], { chat: answer.body.cursors?.chat as string }));
    expect(next.body.messages).toEqual([{ topic: 'chat', id, data: 'x' }]);
  });

  it('gives at most batchLimit messages per topic and the rest in the next poll', async () => {
    const { comet, base } = await serve({ batchLimit: 2 });
    const { cursors } = (await post(base, poll(['t']))).body;
    for (let i = 0; i < 3; i += 1) await comet.publish('t', i);
    const first = await post(base, poll(['t'], cursors));
    expect(first.body.messages?.map((m) => m.data)).toEqual([0, 1]);
    const second = await post(base, poll(['t'], first.body.cursors));
    expect(second.body.messages?.map((m) => m.data)).toEqual([2]);
  });

  it('puts a refused topic in errors and still answers the others', async () => {
    const { comet, base } = await serve({
      authorize: ({ topic }) =>
        topic === 'secret' ? { code: 'forbidden', message: 'agents only' } : topic !== 'nope',
    });
    const { cursors } = (await post(base, poll(['chat']))).body;
    await comet.publish('chat', 'hello');
    const answer = await post(base, poll(['chat', 'secret', 'nope'], cursors));
    expect(answer.body.errors).toEqual({
      secret: { code: 'forbidden', message: 'agents only' },
      nope: { code: 'forbidden', message: 'not allowed to poll topic "nope"' },
    });
    expect(answer.body.messages?.map((m) => m.data)).toEqual(['hello']);
    expect(Object.keys(answer.body.cursors ?? {})).toEqual(['chat']);
  });

  it('refuses a topic whose authorize hook throws, logging it, and keeps serving', async () => {
    const events: string[] = [];
    const { base } = await serve({
      authorize: async ({ topic }) => {
        if (topic === 'bad') throw new Error('db down');
        return true;
      },
      logger: (event) => events.push(event.event),
    });
    const answer = await post(base, poll(['bad', 'good']));
    expect(answer.body.errors?.bad?.code).toBe('internal');
    expect(answer.body.cursors).toHaveProperty('good');
    expect(events).toContain('hook.failed');
  });

  it('gives the authorize hook the request, action, session and user', async () => {
    const seen: unknown[] = [];
    const { base } = await serve({
      authorize: ({ req, action, topic, sessionGuid, userId }) => {
        seen.push([req.headers['x-token'], action, topic, sessionGuid, userId]);
        return true;
      },
    });
    await post(base, { ...poll(['chat']), userId: 'u1' }, { headers: { 'x-token': 't' } });
    expect(seen).toEqual([['t', 'poll', 'chat', 's-1', 'u1']]);
  });

  describe('legacy shape (no "v")', () => {
    it('holds and answers one message as {topic, data}', async () => {
      const { comet, base } = await serve();
      const pending = post(base, { topics: ['chat'], sessionGuid: 'g' });
      await expect.poll(() => comet.stats().waiting).toBe(1);
      await comet.publish('chat', 'one');
      await comet.publish('chat', 'two');
      expect((await pending).body).toEqual({ topic: 'chat', data: 'one' });
    });

    it('answers {reconnect: true} at the end of the hold', async () => {
      const { base } = await serve({ maxWait: 30 });
      expect((await post(base, { topics: ['chat'] })).body).toEqual({ reconnect: true });
    });

    it('answers 403 when every topic is refused', async () => {
      const { base } = await serve({ authorize: () => false });
      const answer = await post(base, { topics: ['chat'] });
      expect(answer.status).toBe(403);
      expect(answer.body.error?.code).toBe('forbidden');
    });
  });
});
