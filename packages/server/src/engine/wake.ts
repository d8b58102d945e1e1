/**
 * The one way a held request waits for a publish, whichever transport holds it (long-poll,
 * stream, WebSocket): a {@link TopicWatch} listens to the request's topics from before its
 * first read (so nothing published in between is missed), holds until a publish and the end of
 * the coalescing window (or a deadline on the shared hold timer), then hands the request back
 * to read. The {@link WakeBatcher} ends the windows one publish opens in one callback.
 *
 * Thousands of requests are held at once, so a watch is one small object and one closure (its
 * broker listener); the closure that fires it is made at its first wake-up only.
 */
import type { EngineContext } from './context';
import type { Expiring, HoldBucket } from './hold-timer';

/**
 * Ends coalescing windows in batches: every waiter whose window starts in the same synchronous
 * run (one publish waking 1 000 held polls) shares one `setImmediate` (`coalesceMs` 0) or one
 * `setTimeout`, instead of one each. The waiters' answers then continue in one microtask drain,
 * so all of their writes go out before the per-write bookkeeping (`finish`, `close`) of any.
 * A window ends exactly when it did with one timer per waiter: same start, same length.
 */
export interface WakeBatcher {
  /** Calls `fire` at the end of the window starting now; returns what {@link cancel} takes. */
  schedule(fire: () => void): WakeBatch;
  /** Takes `fire` out of `batch` (the waiter ended another way); the last one out clears it. */
  cancel(batch: WakeBatch, fire: () => void): void;
}

/** One window's waiters and its timer. */
export interface WakeBatch {
  fires: Set<() => void>;
  timer: ReturnType<typeof setImmediate> | ReturnType<typeof setTimeout> | undefined;
}

/** Makes a {@link WakeBatcher} for windows of `coalesceMs` (0: the next event-loop turn). */
export function createWakeBatcher(coalesceMs: number): WakeBatcher {
  // The batch still taking waiters. With `coalesceMs` 0 it takes them until it fires (as the
  // separate immediates would all have run in that same check phase); with a window it takes
  // them only until the current synchronous run ends, so no waiter's window is cut short.
  let open: WakeBatch | undefined;
  const run = (batch: WakeBatch) => {
    if (open === batch) open = undefined;
    batch.timer = undefined;
    for (const fire of batch.fires) fire();
    batch.fires.clear();
  };
  const clear = (batch: WakeBatch) => {
    if (batch.timer === undefined) return;
    if (coalesceMs === 0) clearImmediate(batch.timer as ReturnType<typeof setImmediate>);
    else clearTimeout(batch.timer as ReturnType<typeof setTimeout>);
    batch.timer = undefined;
  };
  return {
    schedule(fire) {
      let batch = open;
      if (batch === undefined) {
        const made: WakeBatch = { fires: new Set(), timer: undefined };
        made.timer = coalesceMs === 0 ? setImmediate(run, made) : setTimeout(run, coalesceMs, made);
        if (coalesceMs > 0) {
          queueMicrotask(() => {
            if (open === made) open = undefined;
          });
        }
        open = made;
        batch = made;
      }
      batch.fires.add(fire);
      return batch;
    },
    cancel(batch, fire) {
      batch.fires.delete(fire);
      // An abandoned window leaves no timer behind (and no reference to its waiters).
      if (batch.fires.size === 0) {
        clear(batch);
        if (open === batch) open = undefined;
      }
    },
  };
}

/** The held request a {@link TopicWatch} hands back to; the hold is already left when called. */
export interface Sleeper {
  /** A publish came and its coalescing window ended: read now. */
  woken(): void;
  /** The hold's deadline came first. */
  timedOut(): void;
}

/**
 * Listens to a topic set from the moment it is made and, while held, wakes its
 * {@link Sleeper}. Between holds (while the request reads or writes) a publish is remembered,
 * and the next {@link hold} coalesces at once. {@link close} leaves nothing behind.
 */
export class TopicWatch implements Expiring {
  readonly #context: EngineContext;
  readonly #sleeper: Sleeper;
  #stopListening: (() => void) | undefined;
  /** A publish came since the last wake-up (or since listening began). */
  #published = false;
  #holding = false;
  #bucket: HoldBucket | undefined = undefined;
  #batch: WakeBatch | undefined = undefined;
  /** Made at the first wake-up only: an idle hold does not pay for it. */
  #fire: (() => void) | undefined = undefined;

  constructor(context: EngineContext, topics: readonly string[], sleeper: Sleeper) {
    this.#context = context;
    this.#sleeper = sleeper;
    this.#stopListening = context.broker.listen(topics, (topic) => {
      context.reads.invalidate(topic);
      this.#published = true;
      if (this.#holding) this.#coalesce();
    });
  }

  /**
   * Holds until a publish (at once when one came since the last wake-up, after the coalescing
   * window) or, when given, `deadline` on the `performance.now()` clock (shared hold timer).
   */
  hold(deadline?: number): void {
    if (this.#holding || this.#stopListening === undefined) return;
    const context = this.#context;
    this.#holding = true;
    context.counters.waiting += 1;
    if (deadline !== undefined) this.#bucket = context.holds.add(this, deadline);
    if (this.#published) this.#coalesce();
  }

  /** Stops holding without waking the sleeper (it was answered or stopped another way). */
  release(): void {
    if (!this.#holding) return;
    const context = this.#context;
    this.#holding = false;
    context.counters.waiting -= 1;
    if (this.#bucket !== undefined) context.holds.remove(this, this.#bucket);
    this.#bucket = undefined;
    if (this.#batch !== undefined && this.#fire !== undefined) {
      context.wakes.cancel(this.#batch, this.#fire);
    }
    this.#batch = undefined;
  }

  /** Stops holding and listening. */
  close(): void {
    this.release();
    this.#stopListening?.();
    this.#stopListening = undefined;
  }

  /** The hold's deadline (from the shared hold timer, which already let go of it). */
  expire(): void {
    if (!this.#holding) return;
    this.#bucket = undefined;
    this.release();
    this.#sleeper.timedOut();
  }

  #coalesce(): void {
    if (this.#batch !== undefined) return;
    this.#fire ??= () => this.#wake();
    this.#batch = this.#context.wakes.schedule(this.#fire);
  }

  /** The end of the coalescing window. */
  #wake(): void {
    this.#batch = undefined;
    if (!this.#holding) return;
    this.#published = false;
    this.release();
    this.#sleeper.woken();
  }
}
