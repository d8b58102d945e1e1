/**
 * One timer for the deadlines of every held long-poll, instead of one `setTimeout` each.
 * Thousands of polls are held at once and a Node timer costs a `Timeout` object, its closure
 * and a place in a timer list per poll; here a hold costs one entry in a `Set`.
 *
 * Deadlines are grouped by tick ({@link HOLD_TICK_MS}): a hold expires at the first tick at or
 * after its deadline, so it is never answered early and at most one tick late. One `setTimeout`
 * is armed for the earliest tick that has holds, and none when nothing is held.
 *
 * Deadlines are on the monotonic clock (`performance.now()`), like `setTimeout` itself: a step
 * of the wall clock (an NTP correction, a VM resumed) neither stretches a hold past the
 * clients' watchdogs nor ends every hold at once.
 */

/** The granularity of hold deadlines, in ms. Small next to any hold time and idle timeout. */
export const HOLD_TICK_MS = 100;

/** What a {@link HoldTimer} expires. */
export interface Expiring {
  /** Called once, when the deadline's tick has come; the item is already out of the timer. */
  expire(): void;
}

/** The holds due at one tick. */
export interface HoldBucket {
  /** The tick's time, in ms on the `performance.now()` clock. */
  readonly at: number;
  readonly items: Set<Expiring>;
}

/** The shared deadline timer of held polls. */
export interface HoldTimer {
  /** Expires `item` at the first tick at or after `deadline` (`performance.now()` ms); keep the bucket for {@link remove}. */
  add(item: Expiring, deadline: number): HoldBucket;
  /** Takes `item` out (it was answered another way); the last one out stops the timer. */
  remove(item: Expiring, bucket: HoldBucket): void;
  /** How many items wait for their deadline (for stats and tests). */
  size(): number;
  /** True while a timer is armed (for tests: none is when nothing is held). */
  armed(): boolean;
}

/**
 * Makes a {@link HoldTimer} ticking every `tickMs`. `setTimeout`, `clearTimeout` and
 * `performance.now` are read when used, so fake timers apply to it.
 */
export function createHoldTimer(tickMs: number = HOLD_TICK_MS): HoldTimer {
  const buckets = new Map<number, HoldBucket>();
  let count = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;
  /** The tick the armed timer fires for (Infinity when none is armed). */
  let armedAt = Number.POSITIVE_INFINITY;

  const arm = (at: number) => {
    if (timer !== undefined) clearTimeout(timer);
    armedAt = at;
    timer = setTimeout(run, Math.max(0, at - performance.now()));
  };

  const disarm = () => {
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
    armedAt = Number.POSITIVE_INFINITY;
  };

  function run(): void {
    timer = undefined;
    armedAt = Number.POSITIVE_INFINITY;
    const now = performance.now();
    // A handful of buckets (one per tick up to the longest hold): a scan beats a sorted structure.
    const due: HoldBucket[] = [];
    for (const bucket of buckets.values()) if (bucket.at <= now) due.push(bucket);
    for (const bucket of due) {
      buckets.delete(bucket.at);
      count -= bucket.items.size;
    }
    for (const bucket of due) {
      for (const item of bucket.items) {
        try {
          item.expire();
        } catch {
          // One hold's failure is its own: the others still expire.
        }
      }
      bucket.items.clear();
    }
    let next = Number.POSITIVE_INFINITY;
    for (const at of buckets.keys()) if (at < next) next = at;
    if (next !== Number.POSITIVE_INFINITY && next < armedAt) arm(next);
  }

  return {
    add(item, deadline) {
      const at = Math.ceil(deadline / tickMs) * tickMs;
      let bucket = buckets.get(at);
      if (bucket === undefined) {
        bucket = { at, items: new Set() };
        buckets.set(at, bucket);
      }
      if (!bucket.items.has(item)) {
        bucket.items.add(item);
        count += 1;
      }
      if (at < armedAt) arm(at);
      return bucket;
    },

    remove(item, bucket) {
      // A bucket already taken out by `run` is not counted any more.
      if (buckets.get(bucket.at) !== bucket || !bucket.items.delete(item)) return;
      count -= 1;
      if (bucket.items.size > 0) return;
      buckets.delete(bucket.at);
      if (buckets.size === 0) disarm();
      // Otherwise the timer may fire for an empty tick: it then arms for the next one.
    },

    size() {
      return count;
    },

    armed() {
      return timer !== undefined;
    },
  };
}
