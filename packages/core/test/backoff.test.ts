import { describe, expect, it } from 'vitest';
import { backoffDelay } from '../src/backoff';

const options = { initialDelay: 500, maxDelay: 30_000, factor: 2 };

describe('backoffDelay', () => {
  it('grows the cap exponentially from initialDelay', () => {
    const top = () => 0.999999;
    expect(backoffDelay(1, options, top)).toBe(499);
    expect(backoffDelay(2, options, top)).toBe(999);
    expect(backoffDelay(4, options, top)).toBe(3999);
  });

  it('never exceeds maxDelay', () => {
    expect(backoffDelay(50, options, () => 0.999999)).toBe(29_999);
    expect(backoffDelay(5000, options, () => 0.999999)).toBe(29_999);
  });

  it('applies full jitter: a uniform pick from zero to the cap', () => {
    expect(backoffDelay(3, options, () => 0)).toBe(0);
    expect(backoffDelay(3, options, () => 0.5)).toBe(1000);
  });
});
