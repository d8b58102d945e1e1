/**
 * Time-boxing the application's hooks (`authorize`, `onSend`): a hook that has not settled after
 * `hookTimeout` ms is answered `503 unavailable` (the client retries after `Retry-After`), so a
 * stuck database call cannot hold requests, sockets and `close()` forever.
 */
import { CometServerError } from '../errors';

/** The `503` of a hook that took too long; `late` settles when the hook finally does. */
export class HookTimeoutError extends CometServerError {
  readonly late: Promise<unknown>;

  constructor(hook: string, ms: number, late: Promise<unknown>) {
    super(503, 'unavailable', `the ${hook} hook did not answer within ${ms} ms; retry`);
    this.late = late;
  }
}

/** True for a {@link HookTimeoutError}. */
export function isHookTimeout(error: unknown): error is HookTimeoutError {
  return error instanceof HookTimeoutError;
}

/** `value` (a hook's result), or a {@link HookTimeoutError} after `ms`. */
export function timeBox<T>(hook: string, value: T | PromiseLike<T>, ms: number): Promise<T> {
  if (typeof (value as PromiseLike<T> | undefined)?.then !== 'function') {
    return Promise.resolve(value);
  }
  const promise = Promise.resolve(value);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new HookTimeoutError(hook, ms, promise)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
