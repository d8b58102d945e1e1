/**
 * The Redis broker's checks of its callers' arguments (a broker is called by any code, not only
 * by the server) and of the replies of its scripts, and the mapping of ioredis errors to
 * {@link RedisBrokerError}.
 */
import { isRedisBrokerError, RedisBrokerError } from './errors';

export function toBrokerError(error: unknown): RedisBrokerError {
  if (isRedisBrokerError(error)) return error;
  const message = error instanceof Error ? error.message : String(error);
  if (error instanceof Error && error.name === 'ReplyError') {
    return new RedisBrokerError('redis', `Redis refused the command: ${message}`, { cause: error });
  }
  return new RedisBrokerError('unavailable', `Redis is unavailable: ${message}`, { cause: error });
}

export function toJson(data: unknown): string {
  let json: string | undefined;
  try {
    json = JSON.stringify(data);
  } catch (error) {
    throw new TypeError(
      `publish: data must be JSON-serialisable (${error instanceof Error ? error.message : String(error)})`,
      { cause: error },
    );
  }
  if (json === undefined) {
    throw new TypeError(`publish: data must be JSON-serialisable, got ${typeof data}`);
  }
  return json;
}

export function checkTopic(method: string, topic: unknown): asserts topic is string {
  if (typeof topic !== 'string' || topic.length === 0 || topic.length > 200) {
    throw new TypeError(`${method}: topic must be a string of 1 to 200 characters`);
  }
}

export function checkKey(method: string, key: unknown): asserts key is string {
  if (typeof key !== 'string' || key.length === 0 || key.length > 1000) {
    throw new TypeError(`${method}: key must be a string of 1 to 1000 characters`);
  }
}

export function checkLimit(method: string, value: unknown, min: number): asserts value is number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) {
    throw new RangeError(`${method}: expected an integer >= ${min}, got ${String(value)}`);
  }
}

export function asArray(value: unknown): unknown[] {
  if (!Array.isArray(value)) {
    throw new RedisBrokerError('corrupt', 'unexpected answer from a Redis script');
  }
  return value;
}

export function asString(value: unknown): string {
  if (typeof value !== 'string') {
    throw new RedisBrokerError('corrupt', 'unexpected answer from a Redis script');
  }
  return value;
}

export function warn(what: string, thrown: unknown) {
  process.emitWarning(
    `@cometkit/redis: ${what}: ${thrown instanceof Error ? thrown.message : String(thrown)}`,
  );
}
