import { describe, expect, it } from 'vitest';
import {
  ClosedError,
  CometError,
  HttpError,
  isClosedError,
  isCometError,
  isHttpError,
  isNetworkError,
  isQueueFullError,
  isTopicError,
  NetworkError,
  QueueFullError,
  TopicError,
} from '../src/errors';

describe('errors', () => {
  it('carries the status and code of an HTTP error', () => {
    const error = new HttpError(429, 'rate_limited', 'slow down', 2000);
    expect(error).toBeInstanceOf(CometError);
    expect(error).toMatchObject({ name: 'HttpError', status: 429, code: 'rate_limited' });
    expect(error.retryAfterMs).toBe(2000);
  });

  it('guards match by name, so errors from another bundle are recognised', () => {
    const foreign = Object.assign(new Error('x'), { name: 'HttpError' });
    expect(isHttpError(foreign)).toBe(true);
    expect(isCometError(foreign)).toBe(true);
    expect(isHttpError(new NetworkError('y'))).toBe(false);
    expect(isNetworkError(new NetworkError('y'))).toBe(true);
    expect(isTopicError(new TopicError('a', 'bad'))).toBe(true);
    expect(isQueueFullError(new QueueFullError(3))).toBe(true);
    expect(isClosedError(new ClosedError())).toBe(true);
    expect(isCometError(new Error('plain'))).toBe(false);
    expect(isCometError('HttpError')).toBe(false);
  });

  it('keeps the cause', () => {
    const cause = new TypeError('fetch failed');
    expect(new NetworkError('request failed', { cause }).cause).toBe(cause);
  });
});
