/**
 * Error answering: how a request that failed is logged and answered as JSON (the status, code
 * and retry headers of a known error; a bare `500` for anything else, never a stack trace).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { toServerError } from '../errors';
import { sendError } from '../http';
import type { ServerObserver } from '../observer';
import type { ResolvedServerOptions } from '../options';

/** Creates the `fail` of the engine context: answers `thrown` as the error answer it maps to. */
export function createErrorAnswer(
  resolved: ResolvedServerOptions,
  observer: ServerObserver | undefined,
): (req: IncomingMessage, res: ServerResponse, thrown: unknown) => void {
  const log = resolved.log;
  return (req, res, thrown) => {
    const error = toServerError(thrown);
    if (error) {
      log({
        level: error.status >= 500 ? 'error' : 'warn',
        event: 'request.rejected',
        message: error.message,
        status: error.status,
        code: error.code,
        method: req.method,
        url: req.url,
        ...(error === thrown ? {} : { error: thrown }),
      });
      const headers: Record<string, string> = {};
      // The rest of a too-large body is discarded, not read: close the connection after.
      if (error.status === 413) {
        headers.connection = 'close';
        observer?.limited('body');
      }
      // A body cut short by a drain: the rest of it is not read either.
      if (error.cause === 'drain') headers.connection = 'close';
      if (error.status === 503 || error.status === 429) {
        headers['retry-after'] = String(error.retryAfter ?? resolved.retryAfter);
      }
      sendError(res, error.status, error.code, error.message, headers);
      return;
    }
    log({
      level: 'error',
      event: 'request.failed',
      message: 'unexpected error while handling a request',
      method: req.method,
      url: req.url,
      error: thrown,
    });
    // The details stay in the log; the client gets no stack trace.
    sendError(res, 500, 'internal', 'the server could not handle the request');
  };
}
