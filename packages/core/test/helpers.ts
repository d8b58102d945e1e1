/**
 * Test helpers for the client: a manual clock, an online source and a page lifecycle source. The fake backend is
 * `createFakeBackend` in @cometkit/test-utils (shared with the React and Angular tests).
 */
import type { OnlineSource } from '../src/environment';

/** A manual clock for the client's injected timers: time moves only when a test says so. */
export function createClock() {
  let now = 1_000_000;
  let seq = 0;
  const timers = new Map<number, { at: number; fn: () => void }>();
  // A 0 ms timer (the re-poll after an answer) runs on a real macrotask, as it would in a
  // page, without the test moving time.
  const soon = new Map<number, ReturnType<typeof setTimeout>>();
  return {
    now: () => now,
    setTimeout: (fn: () => void, ms: number) => {
      seq += 1;
      const id = seq;
      if (ms <= 0) {
        soon.set(
          id,
          setTimeout(() => {
            soon.delete(id);
            fn();
          }, 0),
        );
      } else timers.set(id, { at: now + ms, fn });
      return id;
    },
    clearTimeout: (id: unknown) => {
      timers.delete(id as number);
      clearTimeout(soon.get(id as number));
      soon.delete(id as number);
    },
    /** Delays of the pending timers from now, shortest first. */
    pending: () => [...timers.values()].map((t) => t.at - now).sort((a, b) => a - b),
    /** Moves time forward, running due timers in order. */
    advance(ms: number) {
      const end = now + ms;
      for (;;) {
        let next: [number, { at: number; fn: () => void }] | undefined;
        for (const entry of timers)
          if (entry[1].at <= end && (!next || entry[1].at < next[1].at)) next = entry;
        if (!next) break;
        timers.delete(next[0]);
        now = Math.max(now, next[1].at);
        next[1].fn();
      }
      now = end;
    },
    /**
     * Moves time forward with no timer running (a frozen page, a hidden tab's throttled timers,
     * a sleeping machine), then runs the overdue ones: late, at the new time.
     */
    jump(ms: number) {
      now += ms;
      this.advance(0);
    },
  };
}

/** A page lifecycle source a test can drive (`freeze`, `pageshow`…). */
export function createLifecycle() {
  const listeners = new Set<(event: 'suspend' | 'resume', cause: string) => void>();
  return {
    source: {
      subscribe(listener: (event: 'suspend' | 'resume', cause: string) => void) {
        listeners.add(listener);
        return () => listeners.delete(listener);
      },
    },
    /** How many listen now. */
    listeners: () => listeners.size,
    emit(event: 'suspend' | 'resume', cause: string) {
      for (const l of listeners) l(event, cause);
    },
  };
}

/** An online source a test can switch. */
export function createOnline(initial = true) {
  let online = initial;
  const listeners = new Set<(online: boolean) => void>();
  const source: OnlineSource = {
    isOnline: () => online,
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
  return {
    source,
    set(value: boolean) {
      online = value;
      for (const l of listeners) l(value);
    },
  };
}
