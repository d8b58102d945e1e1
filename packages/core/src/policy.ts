/**
 * The failure policy, pure: one table that turns every outcome of a poll or a send (an HTTP
 * status, a WebSocket `nack` code, a network error, a timeout, a bad answer) into what the
 * client does next, and the rules of the adaptive hold, late timers and the fast re-poll. No
 * clock, no I/O:
 * `test/policy.test.ts` checks it as tables.
 */
import { backoffDelay, type ResolvedBackoff } from './backoff';
import { type CometError, HttpError, isHttpError, isTimeoutError } from './errors';
import type { TopicErrorBody } from './protocol';

/** What the client does after a failed poll or send. */
export type FailureAction =
  /** A proxy or gateway cut a held poll: poll again, at once unless answers keep coming fast. */
  | 'repoll'
  /** Try again after the server's `Retry-After`, else the backoff. */
  | 'retry'
  /** Ask the `auth` hook once for fresh headers and try again; a refusal is `fatal`. */
  | 'auth'
  /** Retrying cannot help: a poll moves to `failed`, a send rejects. */
  | 'fatal';

/** Which request failed. */
export type RequestKind = 'poll' | 'send';

interface StatusRule {
  match(status: number): boolean;
  poll: FailureAction;
  send: FailureAction;
}

/**
 * Every HTTP status (a `nack` is read as its status, see {@link NACK_STATUS}), first match wins;
 * a status no row matches (400, 405, 413, 415, a redirect not followed) is `fatal` for both: the
 * request itself is wrong, and the same request gets the same answer. Errors without a status
 * (network, watchdog timeout, bad answer) are always `retry`.
 */
const STATUS_RULES: readonly StatusRule[] = [
  // A proxy's or gateway's timeout. A poll was held and cut early: poll again, and lower `wait`
  // (see `nextHold`). A send never reached the server: send again (same id, so no repeat).
  { match: (status) => status === 408 || status === 504, poll: 'repoll', send: 'retry' },
  // Credentials: one refresh per failure streak (polls) or per send, then fatal.
  { match: (status) => status === 401 || status === 403, poll: 'auth', send: 'auth' },
  // Deliberately different. A poll goes to the fixed base URL: a 404 there is a deploy in
  // progress or a load balancer that has not got the route yet, so it heals with backoff. A
  // send's 404 (`not_found`) is the server's answer about that topic: the same send gets the
  // same answer, and the application must hear it rather than wait in a queue.
  { match: (status) => status === 404, poll: 'retry', send: 'fatal' },
  // Overload and server trouble heal: backoff or `Retry-After`.
  { match: (status) => status === 429 || status >= 500, poll: 'retry', send: 'retry' },
];

/**
 * The status a `nack` code stands for, so a nack goes through the same table as an HTTP
 * answer; an unknown code is a 400 (fatal).
 */
export const NACK_STATUS: Readonly<Record<string, number>> = {
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  too_large: 413,
  rate_limited: 429,
  internal: 500,
  unavailable: 503,
};

/** A `nack` as the `HttpError` the same refusal over HTTP would have been. */
export const nackError = ({ code, message }: TopicErrorBody): HttpError =>
  new HttpError(NACK_STATUS[code] ?? 400, code, message);

/**
 * What to do after `error` on a `kind` request. `canRefreshAuth` is false when there is no
 * `auth` hook or it was already asked in this streak: a 401/403 is then fatal.
 */
export function classifyFailure(
  kind: RequestKind,
  error: CometError,
  canRefreshAuth: boolean,
): FailureAction {
  if (!isHttpError(error)) return 'retry';
  const action = STATUS_RULES.find((rule) => rule.match(error.status))?.[kind] ?? 'fatal';
  return action === 'auth' && !canRefreshAuth ? 'fatal' : action;
}

/** The shortest wait a `Retry-After` can ask for, in ms: `0` must not mean a tight loop. */
export const MIN_RETRY_AFTER = 1000;

/**
 * The delay before retry `attempt`: the server's `Retry-After` when it gave one, clamped to
 * [{@link MIN_RETRY_AFTER}, `maxDelay`] (a huge value would overflow the timer to 1 ms) plus up
 * to 25% jitter (clients told the same time do not come back at once); else backoff.
 */
export function retryDelay(
  error: CometError,
  attempt: number,
  backoff: ResolvedBackoff,
  random: () => number,
): number {
  const asked = isHttpError(error) ? error.retryAfterMs : undefined;
  if (asked === undefined) return backoffDelay(attempt, backoff, random);
  const delay = Math.max(MIN_RETRY_AFTER, Math.min(asked, backoff.maxDelay));
  return Math.floor(delay * (1 + random() / 4));
}

/** Answers (or proxy timeouts) quicker than this count as "fast", in ms. */
export const FAST_MS = 1000;
/** Consecutive fast empty answers tolerated before polling again backs off. */
export const FAST_LIMIT = 3;
/** The shortest `wait` the adaptive hold lowers to, in ms. */
export const MIN_WAIT = 5000;
/** Two cuts this close in age (or within 10% of it) are "near the same age", in ms. */
export const NEAR_MS = 2000;
/** Polls held to their end in a row before the adaptive hold probes upward again. */
export const RAISE_AFTER = 10;
/** A timer that fires more than this after it was due was held up, in ms. */
export const LATE_MS = 3000;

/** True when `error` comes from a watchdog whose timer fired late: not a dead transport. */
export const isLate = (error: CometError): boolean =>
  isTimeoutError(error) && error.lateMs > LATE_MS;

/** What the adaptive hold knows about the path. */
export interface Hold {
  /** The `wait` polls ask for, in ms. */
  wait: number;
  /** The age of the poll the last cut ended, in ms. */
  cut?: number;
  /** Cuts in a row near the age `cut`. */
  cuts: number;
  /** Polls held to their end in a row since the last cut or change. */
  held: number;
}

/**
 * How a long-poll held for `heldMs` ended: `cut` by a 408/504 (`status`) or a network error (no
 * status), or `held` (answered empty: the server's hold ended).
 */
export interface HoldEnd {
  end: 'cut' | 'held';
  heldMs: number;
  status?: number;
}

/**
 * The adaptive hold after a long-poll ended, and the reason when `wait` changed. A 408/504 names itself as the path's cut, so one
 * lowers `wait`; a network error needs another near the same age. Either cut must come at least
 * 2 s into the hold and before `wait`; `wait` goes to 80% of its age, never under
 * {@link MIN_WAIT}. After {@link RAISE_AFTER} polls held to their end in a row, `wait` goes
 * back up to `ceiling` (the `wait` option; the server still holds no longer than its own
 * maximum): the path may have changed, and a cut at the old age lowers it again.
 */
export function nextHold(
  hold: Hold,
  { end, heldMs, status }: HoldEnd,
  ceiling: number,
): [Hold, string?] {
  if (heldMs < 2 * FAST_MS) return [hold];
  if (end === 'held') {
    const held = hold.held + 1;
    return hold.wait < ceiling && held >= RAISE_AFTER
      ? [{ ...hold, wait: ceiling, held: 0 }, `${held} polls held to their end in a row`]
      : [{ ...hold, held }];
  }
  if (heldMs >= hold.wait) return [hold];
  const near =
    hold.cut !== undefined && Math.abs(heldMs - hold.cut) <= Math.max(NEAR_MS, hold.cut / 10);
  const cuts = near ? hold.cuts + 1 : 1;
  const next: Hold = { ...hold, cut: heldMs, cuts, held: 0 };
  const wait = Math.max(MIN_WAIT, Math.floor(heldMs * 0.8));
  return (!status && cuts < 2) || wait >= hold.wait
    ? [next]
    : [
        { ...next, wait },
        status ? `${status} after ${heldMs} ms` : `${cuts} network errors near ${heldMs} ms`,
      ];
}

/** The count of fast empty answers in a row after one that came after `heldMs`. */
export const nextFastStreak = (streak: number, heldMs: number, delivered = false): number =>
  delivered || heldMs >= FAST_MS ? 0 : streak + 1;

/**
 * When to poll again after a poll ended (answered or cut): at once (undefined), or after a
 * backoff once {@link FAST_LIMIT} fast empty answers came in a row (a proxy answering for the
 * server, a server that cannot hold).
 */
export const repollDelay = (
  streak: number,
  backoff: ResolvedBackoff,
  random: () => number,
): number | undefined =>
  streak < FAST_LIMIT ? undefined : backoffDelay(streak - FAST_LIMIT + 1, backoff, random);
