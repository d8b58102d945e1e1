import { afterEach, describe, expect, it, vi } from 'vitest';
import { resolveEnvironment } from '../src/environment';

afterEach(() => {
  vi.unstubAllGlobals();
});

describe('resolveEnvironment', () => {
  it('reads navigator.onLine and the window online/offline events when they exist', () => {
    const target = new EventTarget();
    vi.stubGlobal('navigator', { onLine: false });
    vi.stubGlobal('addEventListener', target.addEventListener.bind(target));
    vi.stubGlobal('removeEventListener', target.removeEventListener.bind(target));
    const { online } = resolveEnvironment();
    expect(online.isOnline()).toBe(false);
    const seen: boolean[] = [];
    const stop = online.subscribe((value) => seen.push(value));
    target.dispatchEvent(new Event('online'));
    target.dispatchEvent(new Event('offline'));
    stop();
    target.dispatchEvent(new Event('online'));
    expect(seen).toEqual([true, false]);
  });

  it('is online and silent where there is no navigator or window (Node, SSR)', () => {
    vi.stubGlobal('navigator', undefined);
    const { online, storage } = resolveEnvironment();
    expect(online.isOnline()).toBe(true);
    expect(() => online.subscribe(() => {})()).not.toThrow();
    expect(storage()).toBeUndefined();
  });

  it('reports freeze/resume, visible, any pagehide and a pageshow from the back/forward cache', () => {
    // The window hears the document's events in its capture phase: one target stands for both.
    const win = new EventTarget();
    const doc = { visibilityState: 'hidden' };
    vi.stubGlobal('document', doc);
    vi.stubGlobal('addEventListener', win.addEventListener.bind(win));
    vi.stubGlobal('removeEventListener', win.removeEventListener.bind(win));
    const seen: string[] = [];
    const stop = resolveEnvironment().lifecycle.subscribe((event, cause) =>
      seen.push(`${event} ${cause}`),
    );
    const pageEvent = (type: string, persisted: boolean) =>
      Object.assign(new Event(type), { persisted });
    win.dispatchEvent(new Event('freeze'));
    win.dispatchEvent(new Event('resume'));
    win.dispatchEvent(new Event('visibilitychange'));
    doc.visibilityState = 'visible';
    win.dispatchEvent(new Event('visibilitychange'));
    win.dispatchEvent(pageEvent('pagehide', true));
    win.dispatchEvent(pageEvent('pageshow', false));
    win.dispatchEvent(pageEvent('pageshow', true));
    win.dispatchEvent(pageEvent('pagehide', false));
    stop();
    win.dispatchEvent(new Event('freeze'));
    expect(seen).toEqual([
      'suspend freeze',
      'resume resume',
      'resume visible',
      'suspend pagehide',
      'resume pageshow',
      'suspend pagehide',
    ]);
  });

  it('has no lifecycle events where there is no document or window (Node, SSR)', () => {
    vi.stubGlobal('document', undefined);
    expect(() => resolveEnvironment().lifecycle.subscribe(() => {})()).not.toThrow();
  });

  it('measures durations with performance.now, or with an injected now', () => {
    vi.stubGlobal('performance', { now: () => 42 });
    expect(resolveEnvironment().monotonic()).toBe(42);
    expect(resolveEnvironment({ now: () => 7 }).monotonic()).toBe(7);
    vi.stubGlobal('performance', undefined);
    expect(resolveEnvironment().monotonic()).toBeGreaterThan(1e12);
  });

  it('answers no storage when reading localStorage throws (sandboxed frames)', () => {
    Object.defineProperty(globalThis, 'localStorage', {
      configurable: true,
      get() {
        throw new Error('SecurityError');
      },
    });
    try {
      expect(resolveEnvironment().storage()).toBeUndefined();
    } finally {
      Reflect.deleteProperty(globalThis, 'localStorage');
    }
  });

  it('makes v4 UUIDs without crypto.randomUUID (plain http pages)', () => {
    vi.stubGlobal('crypto', {});
    const id = resolveEnvironment().randomUUID();
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });

  it('reads globals when used, not when resolved, and lets every member be injected', async () => {
    const env = resolveEnvironment({ now: () => 42 });
    const fetch = vi.fn(async () => new Response('ok'));
    vi.stubGlobal('fetch', fetch);
    await env.fetch('http://x.test/');
    expect(fetch).toHaveBeenCalledOnce();
    expect(env.now()).toBe(42);
  });
});
