/**
 * What went wrong, as a stable string:
 * - `unavailable`: Redis cannot be reached (connection lost, reconnecting, command timed out);
 *   retrying later may work.
 * - `closed`: the broker was closed; it will not work again.
 * - `redis`: Redis answered with an error (a misconfigured server, a key of another type).
 * - `corrupt`: a stored entry is not one this broker wrote.
 */
export type RedisBrokerErrorCode = 'unavailable' | 'closed' | 'redis' | 'corrupt';

/** The error every failed broker call rejects with. `cause` holds the ioredis error, if any. */
export class RedisBrokerError extends Error {
  override readonly name = 'RedisBrokerError';
  /** Why it failed; see {@link RedisBrokerErrorCode}. */
  readonly code: RedisBrokerErrorCode;

  constructor(code: RedisBrokerErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

/** True for a {@link RedisBrokerError}, matched by name so that two copies of the package agree. */
export function isRedisBrokerError(error: unknown): error is RedisBrokerError {
  return error instanceof Error && error.name === 'RedisBrokerError';
}
