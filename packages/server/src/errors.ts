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

  constructor(
    status: number,
    code: ErrorCode | (string & {}),
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
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
