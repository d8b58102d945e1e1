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
  loweredWait,
  MIN_WAIT,
  nackError,
  nextFastStreak,
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

describe('loweredWait', () => {
  // held ms, wait, the new wait (undefined: unchanged)
  const table: [number, number, number | undefined][] = [
    [1999, 25_000, undefined], // too fast to say anything about the path
    [10_000, 25_000, 8000], // 80% of what the path allowed
    [5000, 25_000, MIN_WAIT], // never under the floor
    [25_000, 25_000, undefined], // not cut before wait
    [6000, 5000, undefined], // already lower
    [6000, 4900, undefined],
  ];
  it.each(table)('held %i ms with wait %i: %s', (held, wait, lowered) => {
    expect(loweredWait(held, wait)).toBe(lowered);
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
