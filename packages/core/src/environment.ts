/**
 * The runtime the client uses, injectable for tests and non-browser runtimes. Every default
 * reads the global at call time (never at import), so importing the package has no side
 * effects and works in Node and during SSR with no `window`.
 */
import type { HttpPost } from './http';

/** The part of `Storage` the client uses. */
export interface StorageLike {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
}

/** Where the client learns whether the runtime has a network. */
export interface OnlineSource {
  /** True unless the runtime knows it is offline. */
  isOnline(): boolean;
  /** Calls `listener` on each change; returns the function that stops. */
  subscribe(listener: (online: boolean) => void): () => void;
}

/**
 * Where the client learns of the page's lifecycle: `suspend` when the page is frozen or hidden
 * for navigation (`freeze`, `pagehide`: held requests must end, or the page cannot enter the
 * back/forward cache), `resume` when it runs again (`resume`, `pageshow` from the cache, the tab
 * becoming visible). `cause` names the browser event.
 */
export interface LifecycleSource {
  /** Calls `listener` on each change; returns the function that stops. */
  subscribe(listener: (event: 'suspend' | 'resume', cause: string) => void): () => void;
}

/** A timer handle, whatever the runtime's timers return. */
export type TimerHandle = unknown;

/** Everything the client takes from its runtime. */
export interface CometEnvironment {
  /** @default globalThis.fetch */
  fetch: (input: Request | string | URL, init?: RequestInit) => Promise<Response>;
  /**
   * How polls and sends are posted. Through ky over `fetch` when absent; the Node entry point
   * (the package's `node` export condition) posts on keep-alive TCP/TLS connections with its own
   * HTTP/1.1 reader unless `fetch` or `post` is given (docs/concepts/transports.md).
   * @default undefined (ky over `fetch`)
   */
  post?: HttpPost;
  /** @default globalThis.setTimeout */
  setTimeout: (callback: () => void, ms: number) => TimerHandle;
  /** @default globalThis.clearTimeout */
  clearTimeout: (handle: TimerHandle) => void;
  /** @default Math.random */
  random: () => number;
  /** The wall clock, for what is stored across page loads. @default Date.now */
  now: () => number;
  /**
   * A monotonic clock, in ms, for durations (a hold, a late timer): never jumps with the wall
   * clock. @default performance.now where available; else, or when only `now` is given, `now`
   */
  monotonic: () => number;
  /**
   * Poll again after an answer on a 0 ms timer rather than at once: with many clients in one
   * process, every answer of the turn is then delivered before any client polls again. Pages
   * must not (a hidden tab's timers run once a second). @default undefined (at once); true in
   * the Node entry
   */
  repollAfterTurn?: boolean;
  /** @default globalThis.localStorage when readable, else undefined */
  storage: () => StorageLike | undefined;
  /** Per tab, for `persistCursors`. @default globalThis.sessionStorage when readable, else undefined */
  sessionStorage: () => StorageLike | undefined;
  /** @default crypto.randomUUID */
  randomUUID: () => string;
  /** @default navigator.onLine and the window's online/offline events, else always online */
  online: OnlineSource;
  /**
   * @default the `freeze`/`resume`/`visibilitychange` events of the document and the
   * `pagehide`/`pageshow` events of the window, else none
   */
  lifecycle: LifecycleSource;
  /** @default globalThis.WebSocket (for the WebSocket transport) */
  WebSocket: () => typeof WebSocket | undefined;
}

type Listener = (event: { type?: string; persisted?: boolean }) => void;
type Global = typeof globalThis & {
  addEventListener?: (type: string, listener: Listener, options?: { capture: boolean }) => void;
  removeEventListener?: (type: string, listener: Listener, options?: { capture: boolean }) => void;
  navigator?: { onLine?: boolean };
  localStorage?: StorageLike;
  document?: { visibilityState?: string };
  performance?: { now(): number };
  sessionStorage?: StorageLike;
};
const g = (): Global => globalThis as Global;

const browserOnline: OnlineSource = {
  isOnline: () => g().navigator?.onLine !== false,
  subscribe(listener) {
    const on = () => listener(true);
    const off = () => listener(false);
    g().addEventListener?.('online', on);
    g().addEventListener?.('offline', off);
    return () => {
      g().removeEventListener?.('online', on);
      g().removeEventListener?.('offline', off);
    };
  },
};

// Listened to on the window in the capture phase: that also hears the document's events.
const browserLifecycle: LifecycleSource = {
  subscribe(listener) {
    const on: Listener = ({ type, persisted }) => {
      // Any pagehide: a page that is leaving ends its held requests at once.
      if (type === 'freeze' || type === 'pagehide') listener('suspend', type);
      else if (type === 'resume' || persisted) listener('resume', `${type}`);
      else if (type !== 'pageshow' && g().document?.visibilityState === 'visible')
        listener('resume', 'visible');
    };
    const each = (method: 'addEventListener' | 'removeEventListener') => {
      for (const type of ['freeze', 'resume', 'visibilitychange', 'pagehide', 'pageshow'])
        g()[method]?.(type, on, { capture: true });
    };
    each('addEventListener');
    return () => each('removeEventListener');
  },
};

// Where `crypto.randomUUID` is missing (plain http pages are not a secure context).
const fallbackUUID = () =>
  '10000000-1000-4000-8000-100000000000'.replace(/[018]/g, (c) =>
    (Number(c) ^ ((Math.random() * 16) >> (Number(c) / 4))).toString(16),
  );

/** A global storage, or undefined where it is missing or refused. */
function readStorage(name: 'localStorage' | 'sessionStorage'): StorageLike | undefined {
  try {
    return g()[name];
  } catch {
    // Sandboxed iframes and disabled storage throw on access.
    return undefined;
  }
}

/** The environment with every missing member defaulted to the (lazily read) globals. */
export function resolveEnvironment(given: Partial<CometEnvironment> = {}): CometEnvironment {
  return {
    fetch: (input, init) => globalThis.fetch(input, init),
    setTimeout: (callback, ms) => globalThis.setTimeout(callback, ms),
    clearTimeout: (handle) => globalThis.clearTimeout(handle as ReturnType<typeof setTimeout>),
    random: Math.random,
    now: Date.now,
    monotonic: given.now ?? (() => g().performance?.now() ?? Date.now()),
    storage: () => readStorage('localStorage'),
    sessionStorage: () => readStorage('sessionStorage'),
    randomUUID: () => globalThis.crypto?.randomUUID?.() ?? fallbackUUID(),
    online: browserOnline,
    lifecycle: browserLifecycle,
    WebSocket: () => globalThis.WebSocket,
    ...given,
  };
}
