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
   * Counts one more hold for `sessionGuid` and returns the function that ends it (call it once);
   * throws `429 rate_limited` when the session already holds its maximum.
   */
  acquire(sessionGuid: string | undefined): () => void;
  /** Sessions holding at least one poll (for tests). */
  size(): number;
}

const NOTHING = () => {};

/** Makes the counter for at most `max` holds per session; `retryAfter` in seconds. */
export function createSessionHolds(max: number, retryAfter: number): SessionHolds {
  const counts = new Map<string, number>();
  return {
    acquire(sessionGuid) {
      if (sessionGuid === undefined) return NOTHING;
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
      let released = false;
      return () => {
        if (released) return;
        released = true;
        const left = (counts.get(sessionGuid) ?? 1) - 1;
        if (left <= 0) counts.delete(sessionGuid);
        else counts.set(sessionGuid, left);
      };
    },
    size() {
      return counts.size;
    },
  };
}
