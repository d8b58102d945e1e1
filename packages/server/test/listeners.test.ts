import { describe, expect, it, vi } from 'vitest';
import { createListenerRegistry } from '../src/index';

describe('listener registry', () => {
  it('wakes the listeners of the published topic only', () => {
    const registry = createListenerRegistry();
    const chat = vi.fn();
    const news = vi.fn();
    registry.add(['chat'], chat);
    registry.add(['news'], news);
    registry.notify('chat');
    expect(chat).toHaveBeenCalledWith('chat');
    expect(news).not.toHaveBeenCalled();
  });

  it('counts a listener once per add and removes it from every topic once', () => {
    const registry = createListenerRegistry();
    const listener = vi.fn();
    const stop = registry.add(['a', 'b', 'a'], listener);
    expect(registry.size()).toBe(1);
    stop();
    stop();
    expect(registry.size()).toBe(0);
    registry.notify('a');
    registry.notify('b');
    expect(listener).not.toHaveBeenCalled();
  });

  it('wakes exactly the listeners present when a wake-up began', () => {
    const registry = createListenerRegistry();
    const late = vi.fn();
    let stopSecond = () => {};
    const second = vi.fn();
    registry.add(['t'], () => {
      // During the wake-up: a new listener waits for the next one, a removed one still runs now.
      registry.add(['t'], late);
      stopSecond();
    });
    stopSecond = registry.add(['t'], second);
    registry.notify('t');
    expect(late).not.toHaveBeenCalled();
    expect(second).toHaveBeenCalledTimes(1);
    registry.notify('t');
    expect(late).toHaveBeenCalledTimes(1);
    expect(second).toHaveBeenCalledTimes(1);
  });

  it('still wakes the others when a listener throws, and reports the error', () => {
    const onListenerError = vi.fn();
    const registry = createListenerRegistry({ onListenerError });
    const failure = new Error('boom');
    registry.add(['t'], () => {
      throw failure;
    });
    const other = vi.fn();
    registry.add(['t'], other);
    registry.notify('t');
    expect(other).toHaveBeenCalledTimes(1);
    expect(onListenerError).toHaveBeenCalledWith(failure, 't');
  });

  it('wakes every listener for each of its topics on notifyAll, and nobody after clear', () => {
    const registry = createListenerRegistry();
    const both = vi.fn();
    registry.add(['a', 'b'], both);
    registry.notifyAll();
    expect(both.mock.calls).toEqual([['a'], ['b']]);
    registry.clear();
    expect(registry.size()).toBe(0);
    registry.notifyAll();
    expect(both).toHaveBeenCalledTimes(2);
  });
});
