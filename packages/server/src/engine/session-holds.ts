/**
 * How many polls each session holds at once (long-polls and streams), so one client cannot hold
 * thousands: an honest tab holds one. Over `maxHeldPerSession`, a new hold is refused with
 * `429 rate_limited` and `Retry-After`; requests without a `sessionGuid` (the legacy shape) are
 * not counted.
 */
import { CometServerError } from '../errors';

/** The per-session count of held polls. */
export interface SessionHolds {
  /**
   * Counts one more hold for `sessionGuid`; throws `429 rate_limited` when the session already
   * holds its maximum. Each acquire that did not throw is ended by one {@link release}: the
   * holder keeps the session's id, not a closure (thousands of polls are held at once).
   */
  acquire(sessionGuid: string | undefined): void;
  /** Ends one hold of `sessionGuid` counted by {@link acquire} (call it once per acquire). */
  release(sessionGuid: string | undefined): void;
  /** Sessions holding at least one poll (for tests). */
  size(): number;
}

/** Makes the counter for at most `max` holds per session; `retryAfter` in seconds. */
export function createSessionHolds(max: number, retryAfter: number): SessionHolds {
  const counts = new Map<string, number>();
  return {
    acquire(sessionGuid) {
      if (sessionGuid === undefined) return;
      const count = counts.get(sessionGuid) ?? 0;
      if (count >= max) {
        throw new CometServerError(
          429,
          'rate_limited',
          `this session already holds ${max} polls; a tab needs one`,
          { retryAfter },
        );
      }
      counts.set(sessionGuid, count + 1);
    },
    release(sessionGuid) {
      if (sessionGuid === undefined) return;
      const left = (counts.get(sessionGuid) ?? 1) - 1;
      if (left <= 0) counts.delete(sessionGuid);
      else counts.set(sessionGuid, left);
    },
    size() {
      return counts.size;
    },
  };
}
