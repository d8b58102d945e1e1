/**
 * The failure policy as tables: every outcome of a poll and of a send, and the adaptive wait
 * and fast re-poll rules. Pure functions: no network, no clock.
 */
import { describe, expect, it } from 'vitest';
import {
  type CometError,
  HttpError,
  NetworkError,
  ProtocolError,
  TimeoutError,
} from '../src/errors';
import {
  classifyFailure,
  FAST_LIMIT,
  type FailureAction,
  type Hold,
  type HoldEnd,
  isLate,
  LATE_MS,
  MIN_WAIT,
  nackError,
  nextFastStreak,
  nextHold,
  RAISE_AFTER,
  repollDelay,
  retryDelay,
} from '../src/policy';

const http = (status: number, retryAfterMs?: number) =>
  new HttpError(status, `http_${status}`, 'x', retryAfterMs);
const backoff = { initialDelay: 500, maxDelay: 30_000, factor: 2 };

describe('classifyFailure', () => {
  // outcome, poll, send (with an auth hook not yet asked)
  const table: [string, CometError, FailureAction, FailureAction][] = [
    ['408 from a proxy', http(408), 'repoll', 'retry'],
    ['504 from a gateway', http(504), 'repoll', 'retry'],
    ['401', http(401), 'auth', 'auth'],
    ['403', http(403), 'auth', 'auth'],
    ['404: a deploy for polls, the server about the topic for sends', http(404), 'retry', 'fatal'],
    ['429', http(429), 'retry', 'retry'],
    ['500', http(500), 'retry', 'retry'],
    ['503', http(503), 'retry', 'retry'],
    ['400', http(400), 'fatal', 'fatal'],
    ['405', http(405), 'fatal', 'fatal'],
    ['413', http(413), 'fatal', 'fatal'],
    ['415', http(415), 'fatal', 'fatal'],
    ['a network error', new NetworkError('reset'), 'retry', 'retry'],
    ['a watchdog timeout', new TimeoutError(35_000), 'retry', 'retry'],
    ['a bad answer', new ProtocolError('bad answer'), 'retry', 'retry'],
  ];
  it.each(table)('%s: poll %s, send %s', (_name, error, poll, send) => {
    expect(classifyFailure('poll', error, true)).toBe(poll);
    expect(classifyFailure('send', error, true)).toBe(send);
  });

  it('makes a 401/403 fatal when the auth hook is missing or was already asked', () => {
    for (const status of [401, 403]) {
      expect(classifyFailure('poll', http(status), false)).toBe('fatal');
      expect(classifyFailure('send', http(status), false)).toBe('fatal');
    }
  });

  // nack code, the status it stands for, the send's action
  const nacks: [string, number, FailureAction][] = [
    ['unauthorized', 401, 'auth'],
    ['forbidden', 403, 'auth'],
    ['not_found', 404, 'fatal'],
    ['too_large', 413, 'fatal'],
    ['rate_limited', 429, 'retry'],
    ['internal', 500, 'retry'],
    ['unavailable', 503, 'retry'],
    ['bad_request', 400, 'fatal'],
    ['something_new', 400, 'fatal'],
  ];
  it.each(nacks)('reads a nack %s as a %i: send %s', (code, status, action) => {
    const error = nackError({ code, message: 'no' });
    expect(error).toMatchObject({ status, code, message: 'no' });
    expect(classifyFailure('send', error, true)).toBe(action);
  });
});

describe('retryDelay', () => {
  it("uses the server's Retry-After, else the backoff with full jitter", () => {
    expect(retryDelay(http(503, 7000), 3, backoff, () => 0)).toBe(7000);
    expect(retryDelay(http(503), 3, backoff, () => 0.5)).toBe(1000);
    expect(retryDelay(new NetworkError('x'), 1, backoff, () => 0.5)).toBe(250);
  });

  // Retry-After in ms, random, the delay
  const clamped: [number, number, number][] = [
    [0, 0, 1000], // "0" is not a tight loop: at least 1 s
    [0, 0.999, 1249],
    [999, 0, 1000],
    [7000, 0.5, 7875], // up to 25% later, so clients told the same time spread out
    [30_000, 0, 30_000],
    [99_999_999_999_000, 0, 30_000], // beyond any timer: capped at maxDelay, not 1 ms
    [99_999_999_999_000, 0.999, 37_492],
  ];
  it.each(clamped)('clamps Retry-After %i ms (random %d) to %i ms', (asked, random, delay) => {
    expect(retryDelay(http(503, asked), 1, backoff, () => random)).toBe(delay);
  });

  it('never retries sooner than 1 s after a Retry-After, even with a shorter maxDelay', () => {
    expect(retryDelay(http(429, 0), 1, { ...backoff, maxDelay: 100 }, () => 0)).toBe(1000);
  });
});

describe('nextHold: the adaptive hold', () => {
  const W = 25_000;
  const hold = (wait: number, extra: Partial<Hold> = {}): Hold => ({
    wait,
    cuts: 0,
    held: 0,
    ...extra,
  });
  const cut = (heldMs: number, status?: number): HoldEnd => ({ end: 'cut', heldMs, status });
  const held = (heldMs: number): HoldEnd => ({ end: 'held', heldMs });
  // what it knew, how a poll ended, what it knows after, the diagnostic (undefined: none)
  const table: [string, Hold, HoldEnd, Hold, string | undefined][] = [
    [
      'a 504 after 10 s lowers wait to 80%',
      hold(W),
      cut(10_000, 504),
      hold(8000, { cut: 10_000, cuts: 1 }),
      'wait-lowered',
    ],
    [
      'a 408 after 3 s lowers to the floor, never under it',
      hold(W),
      cut(3000, 408),
      hold(MIN_WAIT, { cut: 3000, cuts: 1 }),
      'wait-lowered',
    ],
    [
      'a cut under 2 s says nothing about the path',
      hold(W, { held: 4 }),
      cut(1999, 504),
      hold(W, { held: 4 }),
      undefined,
    ],
    [
      'a 504 at or after wait is not a cut of the hold',
      hold(8000),
      cut(8000, 504),
      hold(8000),
      undefined,
    ],
    [
      'a cut that would not lower wait (already at the floor) is noted only',
      hold(MIN_WAIT),
      cut(4000, 408),
      hold(MIN_WAIT, { cut: 4000, cuts: 1 }),
      undefined,
    ],
    [
      'one network error after 10 s is noted, wait stays',
      hold(W, { held: 3 }),
      cut(10_000),
      hold(W, { cut: 10_000, cuts: 1 }),
      undefined,
    ],
    [
      'a second network error near the same age lowers wait',
      hold(W, { cut: 10_000, cuts: 1 }),
      cut(11_500),
      hold(9200, { cut: 11_500, cuts: 2 }),
      'wait-lowered',
    ],
    [
      'within 10% of a long age is near too',
      hold(W, { cut: 21_000, cuts: 1 }),
      cut(23_000),
      hold(18_400, { cut: 23_000, cuts: 2 }),
      'wait-lowered',
    ],
    [
      'a network error at another age starts counting again',
      hold(W, { cut: 10_000, cuts: 1 }),
      cut(16_000),
      hold(W, { cut: 16_000, cuts: 1 }),
      undefined,
    ],
    [
      'a poll held to its end is counted',
      hold(8000, { cut: 10_000, cuts: 1, held: 2 }),
      held(8000),
      hold(8000, { cut: 10_000, cuts: 1, held: 3 }),
      undefined,
    ],
    [
      'an empty answer under 2 s is not a hold',
      hold(8000, { held: 2 }),
      held(1500),
      hold(8000, { held: 2 }),
      undefined,
    ],
    [
      `after ${RAISE_AFTER} held polls in a row wait goes back up to the ceiling`,
      hold(8000, { cut: 10_000, cuts: 1, held: RAISE_AFTER - 1 }),
      held(8000),
      hold(W, { cut: 10_000, cuts: 1 }),
      'wait-raised',
    ],
    [
      'never above the ceiling',
      hold(W, { held: RAISE_AFTER + 5 }),
      held(W),
      hold(W, { held: RAISE_AFTER + 6 }),
      undefined,
    ],
    [
      'a cut ends the run of held polls',
      hold(8000, { held: RAISE_AFTER - 1 }),
      cut(4000),
      hold(8000, { cut: 4000, cuts: 1 }),
      undefined,
    ],
    [
      'a probe cut again at the old age lowers at once when the cut is a 504',
      hold(W, { cut: 10_000, cuts: 1 }),
      cut(10_200, 504),
      hold(8160, { cut: 10_200, cuts: 2 }),
      'wait-lowered',
    ],
  ];
  it.each(table)('%s', (_, before, end, after, code) => {
    const [next, reason] = nextHold(before, end, W);
    expect(next).toEqual(after);
    const change = reason && (next.wait < before.wait ? 'wait-lowered' : 'wait-raised');
    expect(change).toBe(code);
  });

  it('says why it changed wait', () => {
    expect(nextHold(hold(W), cut(10_000, 504), W)[1]).toBe('504 after 10000 ms');
    expect(nextHold(hold(W, { cut: 10_000, cuts: 1 }), cut(10_000), W)[1]).toBe(
      '2 network errors near 10000 ms',
    );
    expect(nextHold(hold(8000, { held: RAISE_AFTER - 1 }), held(8000), W)[1]).toBe(
      `${RAISE_AFTER} polls held to their end in a row`,
    );
  });
});

describe('isLate', () => {
  it('calls a watchdog late only when its own timer fired more than LATE_MS after due', () => {
    expect(isLate(new TimeoutError(35_000, {}, undefined, LATE_MS + 1))).toBe(true);
    expect(isLate(new TimeoutError(35_000, {}, undefined, LATE_MS))).toBe(false);
    expect(isLate(new TimeoutError(35_000))).toBe(false);
    expect(isLate(new NetworkError('reset'))).toBe(false);
  });
});

describe('fast re-poll', () => {
  it('counts fast empty answers and resets on a slow or delivering one', () => {
    expect(nextFastStreak(2, 999)).toBe(3);
    expect(nextFastStreak(2, 1000)).toBe(0);
    expect(nextFastStreak(2, 10, true)).toBe(0);
  });

  it(`polls again at once below ${FAST_LIMIT} fast answers in a row, then backs off`, () => {
    expect(repollDelay(FAST_LIMIT - 1, backoff, () => 0.5)).toBeUndefined();
    expect(repollDelay(FAST_LIMIT, backoff, () => 0.5)).toBe(250);
    expect(repollDelay(FAST_LIMIT + 2, backoff, () => 0.5)).toBe(1000);
  });
});
