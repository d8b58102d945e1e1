/** The error a hook throws to refuse a request, and how any thrown error becomes an answer. */
import type { ErrorCode } from '@cometkit/core/protocol';

/**
 * An error a hook throws to refuse a request with a given HTTP status and code, e.g.
 * `throw new CometServerError(400, 'bad_request', 'text must be 1 to 2000 characters')` from
 * `onSend`. The server answers `{"error": {code, message}}` with that status; any other thrown
 * error becomes a `500 internal` whose message says nothing about the server's insides.
 */
export class CometServerError extends Error {
  override readonly name = 'CometServerError';
  /** The HTTP status of the answer (400 to 599). */
  readonly status: number;
  /** The error code of the answer body. */
  readonly code: ErrorCode | (string & {});
  /**
   * Seconds for the answer's `Retry-After` (a `429` or `503`); the server's `retryAfter` option
   * when absent.
   */
  readonly retryAfter: number | undefined;

  constructor(
    status: number,
    code: ErrorCode | (string & {}),
    message: string,
    options?: { cause?: unknown; retryAfter?: number },
  ) {
    super(message, options);
    this.retryAfter = options?.retryAfter;
    if (!Number.isInteger(status) || status < 400 || status > 599) {
      throw new RangeError(`CometServerError status must be an integer 400 to 599, got ${status}`);
    }
    this.status = status;
    this.code = code;
  }
}

/** True for a {@link CometServerError}, matched by name so copies from another bundle count too. */
export function isCometServerError(error: unknown): error is CometServerError {
  return error instanceof Error && error.name === 'CometServerError';
}

/**
 * True for a broker error that says its backing store cannot be reached right now (the Redis
 * broker's `RedisBrokerError` with `code: 'unavailable'`). Matched by `code`, so any broker can
 * say it without the server importing that broker.
 */
export function isBrokerUnavailable(error: unknown): boolean {
  return error instanceof Error && (error as Error & { code?: unknown }).code === 'unavailable';
}

/**
 * The error to answer for `error`: itself when it is a {@link CometServerError}, a `503
 * unavailable` (clients wait `Retry-After` and retry, maybe elsewhere) for a broker outage, or
 * undefined for anything else (a `500 internal` that says nothing about the insides).
 */
export function toServerError(error: unknown): CometServerError | undefined {
  if (isCometServerError(error)) return error;
  if (isBrokerUnavailable(error)) {
    return new CometServerError(503, 'unavailable', 'the message broker is unavailable; retry', {
      cause: error,
    });
  }
  return undefined;
}
