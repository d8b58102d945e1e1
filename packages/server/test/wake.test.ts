import { afterEach, describe, expect, it } from 'vitest';
import { createMemoryBroker, type MemoryBroker } from '../src/brokers/memory';
import { createConnectionRegistry } from '../src/engine/connections';
import type { EngineContext } from '../src/engine/context';
import { createHoldTimer } from '../src/engine/hold-timer';
import { createReadCache } from '../src/engine/read';
import { createSessionHolds } from '../src/engine/session-holds';
import { createWakeBatcher, TopicWatch } from '../src/engine/wake';
import { resolveServerOptions } from '../src/options';

const brokers: MemoryBroker[] = [];
afterEach(async () => {
  await Promise.all(brokers.splice(0).map((broker) => broker.close()));
});

function engine(): EngineContext & { broker: MemoryBroker } {
  const broker = createMemoryBroker();
  brokers.push(broker);
  const options = resolveServerOptions({});
  return {
    broker,
    options,
    reads: createReadCache(broker, options.batchLimit),
    wakes: createWakeBatcher(0),
    holds: createHoldTimer(),
    held: new Set(),
    connections: createConnectionRegistry(),
    counters: { waiting: 0 },
    publish: (topic, data) => broker.publish(topic, data),
    track: () => {},
    fail: () => {},
    observer: undefined,
    limits: undefined,
    sessions: createSessionHolds(options.maxHeldPerSession, options.retryAfter),
    drain: new AbortController().signal,
    presence: undefined,
  };
}

function recorder() {
  const events: string[] = [];
  return {
    events,
    sleeper: { woken: () => events.push('woken'), timedOut: () => events.push('timedOut') },
  };
}

const nextTurn = () => new Promise((resolve) => setImmediate(resolve));

describe('TopicWatch', () => {
  it('wakes a held request once per coalescing window, however many publishes it holds', async () => {
    const context = engine();
    const { events, sleeper } = recorder();
    const watch = new TopicWatch(context, ['chat'], sleeper);
    watch.hold();
    expect(context.counters.waiting).toBe(1);
    await context.publish('chat', 1);
    await context.publish('chat', 2);
    await nextTurn();
    expect(events).toEqual(['woken']);
    expect(context.counters.waiting).toBe(0);
    watch.close();
  });

  it('remembers a publish that came while not held and wakes at once on the next hold', async () => {
    const context = engine();
    const { events, sleeper } = recorder();
    const watch = new TopicWatch(context, ['chat'], sleeper);
    await context.publish('chat', 1);
    await nextTurn();
    expect(events).toEqual([]);
    watch.hold();
    await nextTurn();
    expect(events).toEqual(['woken']);
    watch.close();
  });

  it('times out at its deadline on the shared hold timer, which then has nothing armed', async () => {
    const context = engine();
    const { events, sleeper } = recorder();
    const watch = new TopicWatch(context, ['chat'], sleeper);
    watch.hold(performance.now() - 200);
    expect(context.holds.size()).toBe(1);
    await new Promise((resolve) => setTimeout(resolve, 5));
    expect(events).toEqual(['timedOut']);
    expect(context.holds.armed()).toBe(false);
    expect(context.counters.waiting).toBe(0);
    watch.close();
  });

  it('leaves nothing behind when released or closed: no wake-up, deadline or listener', async () => {
    const context = engine();
    const { events, sleeper } = recorder();
    const watch = new TopicWatch(context, ['chat', 'news'], sleeper);
    watch.hold(performance.now() + 60_000);
    await context.publish('chat', 1);
    watch.release();
    await nextTurn();
    expect(events).toEqual([]);
    expect(context.holds.size()).toBe(0);
    expect(context.counters.waiting).toBe(0);
    expect(context.broker.listenerCount()).toBe(1);
    watch.close();
    expect(context.broker.listenerCount()).toBe(0);
    watch.hold();
    expect(context.counters.waiting).toBe(0);
  });
});
