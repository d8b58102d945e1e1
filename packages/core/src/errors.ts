/**
 * Errors of `@cometkit/core`. Every error the client reports or throws is a `CometError`;
 * guards match by `name`, so they work across bundles and realms where `instanceof` fails.
 */
import type { TransportName } from './protocol';

/** Options shared by every error: the cause and where it happened. */
export interface CometErrorOptions {
  cause?: unknown;
  transport?: TransportName;
}

/** The base of every cometkit error. */
export class CometError extends Error {
  override name = 'CometError';
  /** The transport the error happened on, when one was involved. */
  transport?: TransportName;
  constructor(message: string, options: CometErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.transport = options.transport;
  }
}

/** The server (or something on the path) answered a status other than 200. */
export class HttpError extends CometError {
  override name = 'HttpError';
  constructor(
    /** The HTTP status. */
    readonly status: number,
    /** The protocol's error code from the body (`bad_request`, …), or `http_<status>`. */
    readonly code: string,
    message: string,
    /** The server's `Retry-After`, in ms, when it gave one. */
    readonly retryAfterMs?: number,
  ) {
    super(message);
  }
}

/** The request did not get an answer: no network, DNS, refused connection, reset. */
export class NetworkError extends CometError {
  override name = 'NetworkError';
}

/**
 * A request was not answered in time (a transport's watchdog), or a send was not accepted
 * within `sendTimeout`.
 */
export class TimeoutError extends CometError {
  override name = 'TimeoutError';
  constructor(
    /** How long the client waited, in ms. */
    readonly waitedMs: number,
    options?: CometErrorOptions,
    message = `no answer within ${waitedMs} ms`,
    /**
     * How much later than due the watchdog's timer fired, in ms (a hidden tab, a frozen page, a
     * sleeping machine): a late watchdog says nothing about the transport.
     */
    readonly lateMs = 0,
  ) {
    super(message, options);
  }
}

/** A 200 whose body is not JSON or not of the protocol's shape. */
export class ProtocolError extends CometError {
  override name = 'ProtocolError';
}

/** An invalid topic name, or a topic the server refused (`code` from its `errors`). */
export class TopicError extends CometError {
  override name = 'TopicError';
  constructor(
    readonly topic: string,
    message: string,
    /** The server's code for a refused topic (`forbidden`, …); `invalid_topic` for a bad name. */
    readonly code = 'invalid_topic',
  ) {
    super(message);
  }
}

/** `send` was called while `sendQueueLimit` sends were already waiting. */
export class QueueFullError extends CometError {
  override name = 'QueueFullError';
  constructor(readonly limit: number) {
    super(`the send queue is full (${limit} sends waiting)`);
  }
}

/** The client was closed: the call cannot complete. */
export class ClosedError extends CometError {
  override name = 'ClosedError';
  constructor() {
    super('the client is closed');
  }
}

const is =
  <T extends CometError>(...names: string[]) =>
  (value: unknown): value is T =>
    value instanceof Error && names.includes(value.name);

/** True for any cometkit error. */
export const isCometError: (value: unknown) => value is CometError = is(
  'CometError',
  'HttpError',
  'NetworkError',
  'TimeoutError',
  'ProtocolError',
  'TopicError',
  'QueueFullError',
  'ClosedError',
);
/** True for an {@link HttpError}. */
export const isHttpError: (value: unknown) => value is HttpError = is('HttpError');
/** True for a {@link NetworkError}. */
export const isNetworkError: (value: unknown) => value is NetworkError = is('NetworkError');
/** True for a {@link TimeoutError}. */
export const isTimeoutError: (value: unknown) => value is TimeoutError = is('TimeoutError');
/** True for a {@link ProtocolError}. */
export const isProtocolError: (value: unknown) => value is ProtocolError = is('ProtocolError');
/** True for a {@link TopicError}. */
export const isTopicError: (value: unknown) => value is TopicError = is('TopicError');
/** True for a {@link QueueFullError}. */
export const isQueueFullError: (value: unknown) => value is QueueFullError = is('QueueFullError');
/** True for a {@link ClosedError}. */
export const isClosedError: (value: unknown) => value is ClosedError = is('ClosedError');
