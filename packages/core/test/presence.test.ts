import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { type PresenceMember, presence } from '../src/presence';
import type { CometClient, ConnectionState, MessageHandler } from '../src/types';

/** The part of a client the presence store uses, driven by the test. */
function fakeClient() {
  const handlers = new Map<string, MessageHandler>();
  const stateListeners = new Set<(state: ConnectionState) => void>();
  const client = {
    sessionGuid: 'guid-1',
    url: 'http://comet.test/api/comet',
    subscribe: vi.fn((topic: string, callback: MessageHandler) => {
      handlers.set(topic, callback);
      return () => handlers.delete(topic);
    }),
    on: vi.fn((_event: string, listener: (state: ConnectionState) => void) => {
      stateListeners.add(listener);
      return () => stateListeners.delete(listener);
    }),
    reconnect: vi.fn(),
  };
  const deliver = (data: unknown) =>
    handlers.get('room@presence')?.(data, { topic: 'room@presence', id: '1', data });
  const close = () => {
    for (const listener of [...stateListeners]) listener({ status: 'closed' });
  };
  return { client: client as unknown as CometClient, handlers, deliver, close };
}

const ann: PresenceMember = { id: 'a', userId: 'ann' };
const bob: PresenceMember = { id: 'b', userId: 'bob' };

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
});
afterEach(() => {
  vi.useRealTimers();
});

describe('presence store', () => {
  it('follows {topic}@presence: the sync sets the members, joins and leaves change them', () => {
    const { client, deliver } = fakeClient();
    const store = presence(client, 'room', { fetch: vi.fn(async () => ({})) });
    const joins: string[] = [];
    const leaves: string[] = [];
    store.on('join', (member) => joins.push(member.id));
    store.on('leave', (member) => leaves.push(member.id));
    const onChange = vi.fn();
    store.subscribe(onChange);
    expect(client.subscribe).toHaveBeenCalledWith('room@presence', expect.any(Function));

    deliver({ event: 'sync', members: [ann] });
    expect(store.getSnapshot()).toEqual([ann]);
    // The first members are the state, not news.
    expect(joins).toEqual([]);
    deliver({ event: 'join', member: bob });
    deliver({ event: 'join', member: { ...ann, data: { away: true } } });
    expect(store.getSnapshot()).toEqual([{ ...ann, data: { away: true } }, bob]);
    deliver({ event: 'leave', member: ann });
    expect(store.getSnapshot()).toEqual([bob]);
    expect(joins).toEqual(['b']);
    expect(leaves).toEqual(['a']);
    // A later sync (after a reset) tells what changed.
    deliver({ event: 'sync', members: [ann] });
    expect(joins).toEqual(['b', 'a']);
    expect(leaves).toEqual(['a', 'b']);
    expect(onChange).toHaveBeenCalledTimes(5);
  });

  it('is one store per client and topic, with a new snapshot only on a change', () => {
    const { client, deliver } = fakeClient();
    const store = presence(client, 'room');
    expect(presence(client, 'room')).toBe(store);
    store.subscribe(() => {});
    deliver({ event: 'sync', members: [ann] });
    const first = store.getSnapshot();
    expect(store.getSnapshot()).toBe(first);
    deliver({ event: 'join', member: bob });
    expect(store.getSnapshot()).not.toBe(first);
  });

  it('leaves with a keepalive request 1 s after its last listener, unless one came back', async () => {
    const { client, handlers } = fakeClient();
    const fetch = vi.fn(async () => ({}));
    const store = presence(client, 'room', { fetch });
    const stop = store.subscribe(() => {});
    stop();
    // A remount within the second (React StrictMode) keeps the subscription.
    const stopAgain = store.subscribe(() => {});
    vi.advanceTimersByTime(1500);
    expect(fetch).not.toHaveBeenCalled();
    expect(handlers.has('room@presence')).toBe(true);
    stopAgain();
    vi.advanceTimersByTime(999);
    expect(fetch).not.toHaveBeenCalled();
    vi.advanceTimersByTime(1);
    expect(handlers.has('room@presence')).toBe(false);
    expect(fetch).toHaveBeenCalledWith('http://comet.test/api/comet/_leave', {
      method: 'POST',
      keepalive: true,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ v: 1, sessionGuid: 'guid-1', topics: ['room@presence'] }),
    });
  });

  it('leaves when the client closes', () => {
    const { client, close, handlers } = fakeClient();
    const fetch = vi.fn(async () => ({}));
    presence(client, 'room', { fetch }).subscribe(() => {});
    close();
    expect(fetch).toHaveBeenCalledTimes(1);
    expect(handlers.has('room@presence')).toBe(false);
  });
});
