import { afterEach, describe, expect, it } from 'vitest';
import { createMemoryBroker, type MemoryBroker } from '../src/brokers/memory';

let broker: MemoryBroker | undefined;
afterEach(async () => {
  await broker?.close();
  broker = undefined;
});

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
    // Keys are per topic.
    expect(await broker.publish('u', 'other topic', once)).toBe('e-1');
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
});
