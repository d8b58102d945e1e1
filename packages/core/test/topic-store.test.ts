/**
 * The topic stores on their own, with a fake `subscribe`: the cache holds a store only while it
 * is in use (or not yet used), so an app that goes through many topics keeps none of them.
 */
import { describe, expect, it } from 'vitest';
import { createContext } from '../src/context';
import { resolveOptions } from '../src/options';
import { createTopicStores } from '../src/topic-store';
import type { MessageHandler } from '../src/types';

function setup() {
  const context = createContext(resolveOptions({ url: 'http://comet.test/api/comet' }));
  const following = new Map<string, MessageHandler>();
  const cursors: (string | undefined)[] = [];
  const stores = createTopicStores(context, (topic, callback, options) => {
    following.set(topic, callback);
    cursors.push(options.cursor);
    return () => following.delete(topic);
  });
  const publish = (topic: string, id: string) =>
    following.get(topic)?.(id, { topic, id, data: id });
  return { context, stores, following, cursors, publish };
}

describe('topic stores', () => {
  it('caches a store only until its last listener leaves', () => {
    const { stores, following } = setup();
    const first = stores.get('room-0');
    for (let i = 0; i < 100; i++) stores.get(`room-${i}`, { keep: 5 }).subscribe(() => {})();
    // room-0 with keep 1 was never subscribed: still cached.
    expect(stores.size).toBe(1);
    expect(following.size).toBe(0);
    first.subscribe(() => {})();
    expect(stores.size).toBe(0);
  });

  it('caches a store started again, unless a newer store took its key', () => {
    const { stores } = setup();
    const old = stores.get('chat', { keep: 5 });
    old.subscribe(() => {})();
    const newer = stores.get('chat', { keep: 5 });
    expect(newer).not.toBe(old);
    old.subscribe(() => {});
    expect(stores.size).toBe(1);
    expect(stores.get('chat', { keep: 5 })).toBe(newer);
    const held = stores.get('held');
    held.subscribe(() => {})();
    held.subscribe(() => {});
    expect(stores.size).toBe(2);
    expect(stores.get('held')).toBe(held);
  });

  it('keeps the last `keep` messages and continues after its latest one when started again', () => {
    const { stores, publish, cursors } = setup();
    const store = stores.get('chat', { keep: 2, cursor: 'h0' });
    const off = store.subscribe(() => {});
    for (const id of ['h1', 'h2', 'h3']) publish('chat', id);
    expect(store.getSnapshot().messages.map((m) => m.id)).toEqual(['h2', 'h3']);
    expect(store.getSnapshot().latest?.id).toBe('h3');
    off();
    store.subscribe(() => {});
    expect(cursors).toEqual(['h0', 'h3']);
  });

  it('shares a store per topic and keep, and rejects a bad keep', () => {
    const { stores } = setup();
    expect(stores.get('chat')).toBe(stores.get('chat', { keep: 1 }));
    expect(stores.get('chat', { keep: 2 })).not.toBe(stores.get('chat'));
    expect(() => stores.get('chat', { keep: 0 })).toThrow(/keep/);
  });

  it('gives a closed client a store that never starts', () => {
    const { context, stores, following } = setup();
    context.closed = true;
    stores.get('chat').subscribe(() => {});
    expect(following.size).toBe(0);
  });
});
