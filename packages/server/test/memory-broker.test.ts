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

  it('answers reset for a cursor of another epoch, from the future, or garbage', async () => {
    broker = createMemoryBroker({ epoch: 'e2' });
    await broker.publish('t', 1);
    for (const cursor of ['e1-1', 'e2-9', 'nonsense', 'e2-x']) {
      expect(await broker.read('t', cursor, 10)).toEqual({
        messages: [],
        position: 'e2-1',
        reset: true,
        more: false,
      });
    }
  });

  it('keeps a ring of historySize messages and resets a cursor trimmed away', async () => {
    broker = createMemoryBroker({ epoch: 'e', historySize: 3 });
    for (let i = 1; i <= 5; i += 1) await broker.publish('t', i);
    expect((await broker.recent('t', 10)).messages.map((m) => m.data)).toEqual([3, 4, 5]);
    expect((await broker.read('t', 'e-1', 10)).reset).toBe(true);
    const fromKept = await broker.read('t', 'e-2', 10);
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

  it('reserves an idempotency key once, answers the stored value, and expires it', async () => {
    let time = 0;
    broker = createMemoryBroker({ now: () => time });
    expect(await broker.reserve('k', 1000)).toEqual({ state: 'new' });
    expect(await broker.reserve('k', 1000)).toEqual({ state: 'pending' });
    await broker.complete('k', 'id-1', 1000);
    expect(await broker.reserve('k', 1000)).toEqual({ state: 'done', value: 'id-1' });
    time += 1001;
    expect(await broker.reserve('k', 1000)).toEqual({ state: 'new' });
    await broker.release('k');
    expect(await broker.reserve('k', 1000)).toEqual({ state: 'new' });
  });

  it('bounds the idempotency store, dropping the oldest keys', async () => {
    broker = createMemoryBroker({ maxIdempotencyKeys: 2 });
    for (const key of ['a', 'b', 'c']) {
      await broker.reserve(key, 1000);
      await broker.complete(key, key, 1000);
    }
    expect(await broker.reserve('a', 1000)).toEqual({ state: 'new' });
    expect(await broker.reserve('c', 1000)).toEqual({ state: 'done', value: 'c' });
  });

  it('makes a new epoch per broker and rejects bad options', () => {
    const one = createMemoryBroker();
    const two = createMemoryBroker();
    expect(one.epoch).not.toBe(two.epoch);
    expect(() => createMemoryBroker({ historySize: 0 })).toThrow(/historySize/);
    expect(() => createMemoryBroker({ epoch: 'a-b' })).toThrow(/epoch/);
  });
});
