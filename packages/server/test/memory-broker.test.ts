import { afterEach, describe, expect, it, vi } from 'vitest';
import type { BrokerReadResult } from '../src/broker';
import { createMemoryBroker, type MemoryBroker } from '../src/brokers/memory';

let broker: MemoryBroker | undefined;
afterEach(async () => {
  await broker?.close();
  broker = undefined;
  vi.useRealTimers();
});

/** The id of the newest of `messages` (a cursor with nothing after it). */
function read0(messages: { id: string }[]): string {
  return messages.at(-1)?.id ?? '';
}

/** A message of exactly `bytes` bytes of JSON. */
function sized(index: number, bytes: number): { i: number; pad: string } {
  const overhead = JSON.stringify({ i: index, pad: '' }).length;
  return { i: index, pad: 'x'.repeat(bytes - overhead) };
}

describe('createMemoryBroker', () => {
  it('gives ids with its epoch that increase per topic, and reads after a cursor in order', async () => {
    broker = createMemoryBroker({ epoch: 'e1' });
    const start = await broker.read('chat', undefined, 10);
    expect(start).toEqual({ messages: [], position: 'e1-0', reset: false, more: false });
    const a = await broker.publish('chat', 'a');
    const b = await broker.publish('chat', 'b');
    await broker.publish('other', 'x');
    expect([a, b]).toEqual(['e1-1', 'e1-2']);
    const read = await broker.read('chat', start.position, 10);
    expect(read.messages.map((m) => m.data)).toEqual(['a', 'b']);
    expect(read.position).toBe('e1-2');
    expect(read.reset).toBe(false);
    expect(await broker.read('chat', 'e1-2', 10)).toMatchObject({ messages: [], position: 'e1-2' });
  });

  it('reads at once (readNow) what read resolves with, for the read it answers for', async () => {
    const memory = createMemoryBroker({ epoch: 'e', historySize: 3 });
    broker = memory;
    for (let i = 0; i < 5; i += 1) await memory.publish('t', i);
    const readNow = memory.readNow;
    expect(readNow?.of).toBe(memory.read);
    const plain = (result: BrokerReadResult | undefined) =>
      result && { ...result, messages: result.messages.map(({ id, data }) => ({ id, data })) };
    for (const cursor of ['e-0', 'e-2', 'e-3', 'e-5', 'e-9', 'other-1', 'garbage']) {
      expect({ cursor, result: plain(readNow?.('t', cursor, 2)) }).toEqual({
        cursor,
        result: plain(await memory.read('t', cursor, 2)),
      });
    }
    await memory.close();
    expect(() => readNow?.('t', 'e-1', 2)).toThrow(/closed/);
  });

  it('reads as wire bytes (readWire) the messages read gives, across pages, for any topic and data', async () => {
    // An epoch and a topic JSON must escape, multi-byte data, a message larger than a page
    // (64 KiB), and enough small ones to fill several pages.
    const memory = createMemoryBroker({ epoch: 'e"\\é', historySize: 400 });
    broker = memory;
    const topic = 'tö"pic 💬';
    const values: unknown[] = [];
    for (let i = 0; i < 700; i += 1) {
      values.push(
        i % 7 === 0 ? { i, text: 'é"\n€💬'.repeat(i % 50) } : { i, pad: 'x'.repeat(i % 300) },
      );
    }
    values.splice(650, 0, 'y'.repeat(70_000), null, []);
    for (const value of values) await memory.publish(topic, value);
    const readWire = memory.readWire;
    expect(readWire?.of).toBe(memory.read);
    if (!readWire) return;
    const first = (await memory.read(topic, 'e"\\é-0', 1)).position; // reset: before the oldest kept
    const firstSeq = Number(first.slice(first.lastIndexOf('-') + 1));
    const wireOf = (chunks: Buffer[]) =>
      JSON.parse(`[${chunks.map((chunk) => chunk.toString('utf8')).join(',')}]`) as unknown[];
    for (const offset of [0, 1, 37, 199, 249, 250, 251, 398, 400]) {
      const cursor = `e"\\é-${firstSeq + offset}`;
      for (const limit of [1, 3, 150, 1000]) {
        const read = await memory.read(topic, cursor, limit);
        const wire = readWire(topic, cursor, limit, Number.POSITIVE_INFINITY);
        const expected = read.messages.map(({ topic, id, data }) => ({ topic, id, data }));
        expect({ offset, limit, messages: wireOf(wire.chunks) }).toEqual({
          offset,
          limit,
          messages: expected,
        });
        expect(wire).toMatchObject({
          count: expected.length,
          position: read.position,
          reset: false,
          more: read.more,
        });
        const bytes = expected.reduce<number>(
          (sum, m) => sum + Buffer.byteLength(JSON.stringify(m)) + 1,
          0,
        );
        expect(wire.bytes).toBe(bytes);
      }
    }
    // A byte budget: the messages that fit (the first always), their position after them.
    const cursor = `e"\\é-${firstSeq}`;
    const all = (await memory.read(topic, cursor, 1000)).messages;
    const sizes = all.map(
      ({ topic, id, data }) => Buffer.byteLength(JSON.stringify({ topic, id, data })) + 1,
    );
    for (const budget of [1, (sizes[0] as number) + (sizes[1] as number), 10_000, 100_000]) {
      let fit = 1;
      let used = sizes[0] as number;
      while (fit < sizes.length && used + (sizes[fit] as number) <= budget)
        used += sizes[fit++] as number;
      const wire = readWire(topic, cursor, 1000, budget);
      expect({ budget, count: wire.count, bytes: wire.bytes }).toEqual({
        budget,
        count: fit,
        bytes: used,
      });
      expect(wireOf(wire.chunks).map((m) => (m as { id: string }).id)).toEqual(
        all.slice(0, fit).map((m) => m.id),
      );
      expect(wire.position).toBe(all[fit - 1]?.id);
      expect(wire.more).toBe(true);
    }
    // Reads that bring nothing: as read.
    for (const cursor of [read0(all), 'other-1', 'garbage', `e"\\é-99999`]) {
      const read = await memory.read(topic, cursor, 10);
      expect(readWire(topic, cursor, 10, 1000)).toMatchObject({
        count: 0,
        chunks: [],
        position: read.position,
        reset: read.reset,
      });
    }
  });

  it('keeps the JSON text the server encoded already instead of encoding data again', async () => {
    const memory = createMemoryBroker();
    broker = memory;
    // A value it could not encode itself: only the given text can have been kept.
    await memory.publish('t', { n: 1n }, { json: '{"n":"1"}' });
    expect((await memory.recent('t', 1)).messages.map((m) => m.data)).toEqual([{ n: '1' }]);
  });

  it('stops at the limit and says more follow', async () => {
    broker = createMemoryBroker({ epoch: 'e1' });
    for (let i = 0; i < 5; i += 1) await broker.publish('t', i);
    const read = await broker.read('t', 'e1-0', 2);
    expect(read.messages.map((m) => m.data)).toEqual([0, 1]);
    expect(read).toMatchObject({ position: 'e1-2', more: true });
  });

  it('resets a cursor of another epoch or garbage to the start of its history, skipping nothing kept', async () => {
    broker = createMemoryBroker({ epoch: 'e2' });
    await broker.publish('t', 1);
    await broker.publish('t', 2);
    for (const cursor of ['e1-1', 'e1-7', 'nonsense', 'e2-x']) {
      expect(await broker.read('t', cursor, 10)).toEqual({
        messages: [],
        position: 'e2-0',
        reset: true,
        more: false,
      });
    }
    // Delivery goes on from there: both messages of this epoch.
    const next = await broker.read('t', 'e2-0', 10);
    expect(next.messages.map((m) => m.data)).toEqual([1, 2]);
  });

  it('resets a cursor from the future to the newest position', async () => {
    broker = createMemoryBroker({ epoch: 'e2' });
    await broker.publish('t', 1);
    expect(await broker.read('t', 'e2-9', 10)).toEqual({
      messages: [],
      position: 'e2-1',
      reset: true,
      more: false,
    });
  });

  it('keeps a ring of historySize messages and resets a cursor trimmed away to the oldest kept', async () => {
    broker = createMemoryBroker({ epoch: 'e', historySize: 3 });
    for (let i = 1; i <= 5; i += 1) await broker.publish('t', i);
    expect((await broker.recent('t', 10)).messages.map((m) => m.data)).toEqual([3, 4, 5]);
    const trimmed = await broker.read('t', 'e-1', 10);
    expect(trimmed).toEqual({ messages: [], position: 'e-2', reset: true, more: false });
    const fromKept = await broker.read('t', trimmed.position, 10);
    expect(fromKept.reset).toBe(false);
    expect(fromKept.messages.map((m) => m.id)).toEqual(['e-3', 'e-4', 'e-5']);
  });

  it('grows a ring that wrapped around, keeping every message, its wire bytes and its age', async () => {
    let time = 1_000;
    const memory = createMemoryBroker({ epoch: 'e', historyMaxAge: 100, now: () => time });
    broker = memory;
    // Ten messages aged out: the ring (16 slots at first) then starts at slot 10, and fills up,
    // wrapping around, before it grows.
    for (let i = 0; i < 10; i += 1) await memory.publish('t', { old: i });
    time += 150;
    const values = Array.from({ length: 40 }, (_, i) => ({ i, text: 'é'.repeat(i) }));
    for (const [index, value] of values.entries()) {
      if (index === 20) time += 60; // the first 20 are now 60 ms older than the rest
      await memory.publish('t', value);
    }
    const read = await memory.read('t', 'e-10', 100);
    expect(read.messages.map((m) => m.data)).toEqual(values);
    const wire = memory.readWire?.('t', 'e-10', 100, Number.POSITIVE_INFINITY);
    const chunks = wire?.chunks.map((chunk) => chunk.toString()).join(',');
    expect(JSON.parse(`[${chunks}]`).map((m: { data: unknown }) => m.data)).toEqual(values);
    // The ages moved with their messages: 50 ms later only the last 20 are young enough.
    time += 50;
    expect((await memory.recent('t', 100)).messages.map((m) => m.data)).toEqual(values.slice(20));
  });

  it('trims messages older than historyMaxAge', async () => {
    let time = 1_000;
    broker = createMemoryBroker({ epoch: 'e', historyMaxAge: 100, now: () => time });
    await broker.publish('t', 'old');
    time += 50;
    await broker.publish('t', 'new');
    time += 60;
    const recent = await broker.recent('t', 10);
    expect(recent.messages.map((m) => m.data)).toEqual(['new']);
    expect((await broker.read('t', 'e-0', 10)).reset).toBe(true);
    expect((await broker.read('t', 'e-1', 10)).messages.map((m) => m.data)).toEqual(['new']);
  });

  it('recent gives the last messages and the position after them', async () => {
    broker = createMemoryBroker({ epoch: 'e' });
    expect(await broker.recent('none', 5)).toEqual({ messages: [], position: 'e-0' });
    for (let i = 1; i <= 4; i += 1) await broker.publish('t', i);
    const recent = await broker.recent('t', 2);
    expect(recent).toEqual({
      messages: [
        { topic: 't', id: 'e-3', data: 3 },
        { topic: 't', id: 'e-4', data: 4 },
      ],
      position: 'e-4',
    });
  });

  it('recent with maxAgeMs gives only the messages of the last maxAgeMs', async () => {
    let time = 0;
    broker = createMemoryBroker({ epoch: 'e', now: () => time });
    await broker.publish('t', 'old');
    time += 1000;
    await broker.publish('t', 'newer');
    time += 1000;
    await broker.publish('t', 'newest');
    const recent = await broker.recent('t', 10, { maxAgeMs: 1000 });
    expect(recent).toEqual({
      messages: [
        { topic: 't', id: 'e-2', data: 'newer' },
        { topic: 't', id: 'e-3', data: 'newest' },
      ],
      position: 'e-3',
    });
    expect((await broker.recent('t', 1, { maxAgeMs: 5000 })).messages.map((m) => m.data)).toEqual([
      'newest',
    ]);
  });

  it('wakes listeners of a topic, not of others, until they stop listening', async () => {
    broker = createMemoryBroker();
    const woken: string[] = [];
    const stop = broker.listen(['a', 'b', 'a'], (topic) => woken.push(topic));
    expect(broker.listenerCount()).toBe(1);
    await broker.publish('a', 1);
    await broker.publish('c', 1);
    await broker.publish('b', 1);
    stop();
    stop();
    await broker.publish('a', 2);
    expect(woken).toEqual(['a', 'b']);
    expect(broker.listenerCount()).toBe(0);
  });

  it('keeps waking other listeners when one throws', async () => {
    broker = createMemoryBroker();
    const woken: string[] = [];
    broker.listen(['a'], () => {
      throw new Error('boom');
    });
    broker.listen(['a'], (topic) => woken.push(topic));
    await broker.publish('a', 1);
    expect(woken).toEqual(['a']);
  });

  it('publishes once per idempotency key and topic, answering the first id to a repeat', async () => {
    let time = 0;
    broker = createMemoryBroker({ epoch: 'e', now: () => time });
    const woken: string[] = [];
    broker.listen(['t', 'u'], (topic) => woken.push(topic));
    const once = { idempotency: { key: 'k', ttlMs: 1000 } };
    expect(await broker.publish('t', 'first', once)).toBe('e-1');
    expect(await broker.publish('t', 'again', once)).toBe('e-1');
    // Keys are per topic (a new topic's ids start above every id handed out so far).
    expect(await broker.publish('u', 'other topic', once)).toBe('e-2');
    expect((await broker.recent('t', 10)).messages.map((m) => m.data)).toEqual(['first']);
    expect(woken).toEqual(['t', 'u']);
    // After the ttl the key is forgotten: a repeat publishes again.
    time += 1001;
    expect(await broker.publish('t', 'late', once)).toBe('e-2');
  });

  it('answers concurrent publishes with one key with one message', async () => {
    broker = createMemoryBroker({ epoch: 'e' });
    const once = { idempotency: { key: 'k', ttlMs: 1000 } };
    const ids = await Promise.all([1, 2, 3].map((n) => broker?.publish('t', n, once)));
    expect(ids).toEqual(['e-1', 'e-1', 'e-1']);
    expect((await broker.recent('t', 10)).messages).toHaveLength(1);
  });

  it('bounds the idempotency records, dropping the oldest keys', async () => {
    broker = createMemoryBroker({ epoch: 'e', maxIdempotencyKeys: 2 });
    for (const key of ['a', 'b', 'c']) {
      await broker.publish('t', key, { idempotency: { key, ttlMs: 1000 } });
    }
    // 'a' was dropped: published again; 'c' is kept.
    expect(await broker.publish('t', 'a', { idempotency: { key: 'a', ttlMs: 1000 } })).toBe('e-4');
    expect(await broker.publish('t', 'c', { idempotency: { key: 'c', ttlMs: 1000 } })).toBe('e-3');
  });

  it('makes a new epoch per broker and rejects bad options', () => {
    const one = createMemoryBroker();
    const two = createMemoryBroker();
    expect(one.epoch).not.toBe(two.epoch);
    expect(() => createMemoryBroker({ historySize: 0 })).toThrow(/historySize/);
    expect(() => createMemoryBroker({ epoch: 'a-b' })).toThrow(/epoch/);
  });

  describe('bounds', () => {
    it('holds a burst of 20 000 messages of 100 bytes with the default options', async () => {
      broker = createMemoryBroker({ epoch: 'e' });
      const start = await broker.read('burst', undefined, 1);
      for (let i = 0; i < 20_000; i += 1) await broker.publish('burst', sized(i, 100));
      const read = await broker.read('burst', start.position, 100_000);
      expect(read.reset).toBe(false);
      expect(read.messages).toHaveLength(20_000);
      expect(read.messages[0]?.data).toEqual(sized(0, 100));
    });

    it('keeps at most historyMaxBytes of JSON per topic, dropping the oldest', async () => {
      broker = createMemoryBroker({ epoch: 'e', historyMaxBytes: 1000 });
      for (let i = 1; i <= 25; i += 1) await broker.publish('t', sized(i, 100));
      const kept = (await broker.recent('t', 100)).messages.map((m) => (m.data as { i: number }).i);
      expect(kept).toEqual([16, 17, 18, 19, 20, 21, 22, 23, 24, 25]);
      expect(broker.usage()).toEqual({ topics: 1, messages: 10, bytes: 1000 });
      expect((await broker.read('t', 'e-14', 10)).reset).toBe(true);
      expect((await broker.read('t', 'e-15', 100)).messages).toHaveLength(10);
    });

    it('caps the bytes of all topics, taking from the topic published to least recently', async () => {
      broker = createMemoryBroker({ epoch: 'e', maxBytes: 1000 });
      for (let i = 0; i < 5; i += 1) await broker.publish('quiet', sized(i, 100));
      for (let i = 0; i < 5; i += 1) await broker.publish('busy', sized(i, 100));
      await broker.publish('quiet', sized(5, 100)); // quiet is now the newest
      for (let i = 5; i < 8; i += 1) await broker.publish('busy', sized(i, 100));
      expect(broker.usage().bytes).toBeLessThanOrEqual(1000);
      // Each topic gave up its oldest while it was the one published to least recently: busy its
      // first when quiet had just been published to, then quiet its first three.
      expect(
        (await broker.recent('quiet', 10)).messages.map((m) => (m.data as { i: number }).i),
      ).toEqual([3, 4, 5]);
      expect(
        (await broker.recent('busy', 10)).messages.map((m) => (m.data as { i: number }).i),
      ).toEqual([1, 2, 3, 4, 5, 6, 7]);
    });

    it('caps the topics, removing the one published to least recently', async () => {
      broker = createMemoryBroker({ epoch: 'e', maxTopics: 2 });
      await broker.publish('a', 1);
      await broker.publish('b', 1);
      await broker.publish('a', 2);
      await broker.publish('c', 1);
      expect(broker.usage().topics).toBe(2);
      expect((await broker.recent('b', 10)).messages).toEqual([]);
      expect((await broker.recent('a', 10)).messages).toHaveLength(2);
      // A cursor that missed b's message is told so.
      expect((await broker.read('b', 'e-0', 10)).reset).toBe(true);
    });

    it('sweeps history older than historyMaxAge on a timer and removes the empty topics', async () => {
      vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval', 'Date'] });
      broker = createMemoryBroker({ historyMaxAge: 60_000, sweepInterval: 10_000 });
      for (let topic = 0; topic < 1500; topic += 1) {
        await broker.publish(`room:${topic}`, sized(topic, 1000));
      }
      expect(broker.usage()).toEqual({ topics: 1500, messages: 1500, bytes: 1_500_000 });
      vi.advanceTimersByTime(60_000);
      expect(broker.usage().topics).toBe(1500); // not yet older than the limit
      vi.advanceTimersByTime(10_000);
      expect(broker.usage()).toEqual({ topics: 0, messages: 0, bytes: 0 });
    });

    it('never reuses the ids of a removed topic, and reads its next log from a handshake made while it had none', async () => {
      vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval', 'Date'] });
      broker = createMemoryBroker({ epoch: 'e', historyMaxAge: 1000, sweepInterval: 1000 });
      const old = await broker.publish('room', 'old');
      const seen = await broker.read('room', undefined, 1);
      expect(seen.position).toBe(old);
      vi.advanceTimersByTime(2000);
      expect(broker.usage().topics).toBe(0);
      // Up to date before the removal: no reset, nothing to read, the cursor is kept.
      expect(await broker.read('room', old, 10)).toEqual({
        messages: [],
        position: old,
        reset: false,
        more: false,
      });
      const handshake = (await broker.read('room', undefined, 1)).position;
      await broker.publish('other', 1);
      const next = await broker.publish('room', 'new');
      expect(next).not.toBe(old);
      for (const cursor of [old, handshake]) {
        const read = await broker.read('room', cursor, 10);
        expect(read.reset).toBe(false);
        expect(read.messages.map((m) => m.data)).toEqual(['new']);
      }
    });

    it('resets a cursor that missed messages of a removed topic', async () => {
      vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval', 'Date'] });
      broker = createMemoryBroker({ epoch: 'e', historyMaxAge: 1000, sweepInterval: 1000 });
      const handshake = (await broker.read('room', undefined, 1)).position;
      await broker.publish('room', 'never read');
      vi.advanceTimersByTime(2000);
      expect(broker.usage().topics).toBe(0);
      expect((await broker.read('room', handshake, 10)).reset).toBe(true);
      await broker.publish('room', 'later');
      const read = await broker.read('room', handshake, 10);
      expect(read).toMatchObject({ messages: [], reset: true });
    });

    it('refuses data that JSON cannot carry', async () => {
      broker = createMemoryBroker();
      await expect(broker.publish('t', { n: 1n })).rejects.toThrow(/JSON/);
    });
  });
});
