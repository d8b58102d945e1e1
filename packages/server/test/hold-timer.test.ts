import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createHoldTimer, type Expiring, HOLD_TICK_MS } from '../src/engine/hold-timer';

function item(log: string[], name: string): Expiring {
  return { expire: () => log.push(name) };
}

describe('createHoldTimer', () => {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('expires a hold at the first tick at or after its deadline, never before', () => {
    const timer = createHoldTimer(100);
    const log: string[] = [];
    // The fake clock starts at 0: 50 is between ticks, so it belongs to the tick at 100.
    timer.add(item(log, 'a'), performance.now() + 50);
    vi.advanceTimersByTime(99);
    expect(log).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(log).toEqual(['a']);
    expect(timer.size()).toBe(0);
  });

  it('expires holds in deadline order with one timer for all of them', () => {
    const timer = createHoldTimer(100);
    const log: string[] = [];
    timer.add(item(log, 'late'), performance.now() + 25_000);
    for (let index = 0; index < 1000; index += 1) {
      timer.add(item(log, 'many'), performance.now() + 20_000);
    }
    // An earlier deadline added after the later ones moves the timer forward.
    timer.add(item(log, 'early'), performance.now() + 5000);
    expect(vi.getTimerCount()).toBe(1);
    expect(timer.size()).toBe(1002);
    vi.advanceTimersByTime(5000);
    expect(log).toEqual(['early']);
    vi.advanceTimersByTime(15_000);
    expect(log.length).toBe(1001);
    expect(log.at(-1)).toBe('many');
    vi.advanceTimersByTime(4999);
    expect(log).not.toContain('late');
    vi.advanceTimersByTime(1);
    expect(log.at(-1)).toBe('late');
    expect(timer.armed()).toBe(false);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('does not expire a removed hold, and the last one out stops the timer', () => {
    const timer = createHoldTimer(100);
    const log: string[] = [];
    const a = item(log, 'a');
    const b = item(log, 'b');
    const bucketA = timer.add(a, performance.now() + 1000);
    const bucketB = timer.add(b, performance.now() + 3000);
    timer.remove(a, bucketA);
    vi.advanceTimersByTime(1000);
    expect(log).toEqual([]);
    expect(timer.armed()).toBe(true);
    timer.remove(b, bucketB);
    expect(timer.size()).toBe(0);
    expect(timer.armed()).toBe(false);
    expect(vi.getTimerCount()).toBe(0);
    vi.advanceTimersByTime(5000);
    expect(log).toEqual([]);
  });

  it('ignores a remove after the hold expired, and one failing hold does not stop the others', () => {
    const timer = createHoldTimer(100);
    const log: string[] = [];
    const failing: Expiring = {
      expire: () => {
        throw new Error('boom');
      },
    };
    const a = item(log, 'a');
    timer.add(failing, performance.now() + 100);
    const bucket = timer.add(a, performance.now() + 100);
    vi.advanceTimersByTime(100);
    expect(log).toEqual(['a']);
    timer.remove(a, bucket);
    expect(timer.size()).toBe(0);
    // Still usable afterwards.
    timer.add(item(log, 'b'), performance.now() + 200);
    vi.advanceTimersByTime(200);
    expect(log).toEqual(['a', 'b']);
  });

  it('ticks every HOLD_TICK_MS by default', () => {
    const timer = createHoldTimer();
    const log: string[] = [];
    timer.add(item(log, 'a'), performance.now() + 1);
    vi.advanceTimersByTime(HOLD_TICK_MS - 1);
    expect(log).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(log).toEqual(['a']);
  });
});
