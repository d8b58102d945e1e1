/**
 * What the server writes to one WebSocket, with backpressure: frames that wait to be written,
 * replies nobody waits for (bounded in count), closes with a grace period, and the close codes
 * and `error` frames of the WebSocket transport.
 */
import type { ErrorBody } from '@cometkit/core/protocol';
import type { WebSocket } from 'ws';
import { toServerError } from '../errors';
import type { ResolvedServerOptions } from '../options';

/** WebSocket close codes the server uses (RFC 6455 §7.4 and the IANA registry). */
export const CLOSE_CODES = {
  /** A binary frame: the protocol is text frames of JSON. */
  unsupportedData: 1003,
  /** `maxBadFrames` bad frames in a row. */
  policyViolation: 1008,
  /** A frame larger than `bodyLimit` (closed by `ws` itself). */
  tooLarge: 1009,
  /** The broker failed while the socket was open: reconnect (maybe elsewhere). */
  internalError: 1011,
  /** The server drains (`close()`) or its broker failed: reconnect, elsewhere. */
  serviceRestart: 1012,
  /** `disconnect()` ended the socket: reconnect, and `authorize` decides again. */
  revoked: 4001,
  /** The client left more than `maxBufferedBytes` unread: reconnect later. */
  tryAgainLater: 1013,
} as const;

// After a close frame, how long a client gets to answer before its socket is destroyed.
export const CLOSE_GRACE_MS = 1000;

// Replies (pong, error, nack) written but not yet taken by the OS: a client that keeps this many
// unread is not reading, and each queued write costs heap beyond its bytes, so it is closed.
const MAX_UNFLUSHED_REPLIES = 1024;

/** The `error` frame: a frame the server could not act on (the socket stays open). */
export interface ErrorFrame {
  type: 'error';
  error: ErrorBody['error'];
  /** Seconds before a poll over the rate limit may be sent again. */
  retryAfter?: number;
}

export function errorOf(error: unknown): ErrorBody['error'] {
  const known = toServerError(error);
  if (known) return { code: known.code, message: known.message };
  return { code: 'internal', message: 'the server could not handle the frame' };
}

/** The `retryAfter` (seconds) of a frame answering `error`: for a 429 and a 503 only. */
export function retryAfterOf(error: unknown, fallback: number): { retryAfter?: number } {
  const known = toServerError(error);
  if (known?.status !== 429 && known?.status !== 503) return {};
  return { retryAfter: known.retryAfter ?? fallback };
}

/** The writing side of one socket. */
export interface SocketOutput {
  /** Closes the socket with `code`; one that does not answer the close frame is destroyed. */
  closeWith(code: number, reason: string): void;
  /** Writes `frame`; resolves once written (at once when the socket is closed or closing). */
  send(frame: object | string): Promise<void>;
  /** A reply nobody waits for (pong, error, nack): queued only while the client reads. */
  reply(frame: object): void;
}

/** Creates the output of `ws`, closing it when its client leaves too much unread. */
export function createSocketOutput(ws: WebSocket, options: ResolvedServerOptions): SocketOutput {
  const log = options.log;
  /** Closes the socket with `code`; one that does not answer the close frame is destroyed. */
  const closeWith = (code: number, reason: string) => {
    if (ws.readyState !== ws.OPEN) return;
    ws.close(code, reason);
    const force = setTimeout(() => ws.terminate(), CLOSE_GRACE_MS);
    ws.once('close', () => clearTimeout(force));
  };
  /**
   * True when `text` may be queued: a client that leaves more than `maxBufferedBytes` unread
   * is closed instead, so nothing the server writes to it (answers, errors, pongs) piles up.
   */
  const room = (text: string): boolean => {
    if (ws.readyState !== ws.OPEN) return false;
    if (ws.bufferedAmount + text.length <= options.maxBufferedBytes) return true;
    log({
      level: 'warn',
      event: 'websocket.slow',
      message: `more than ${options.maxBufferedBytes} bytes unread: closed`,
    });
    closeWith(CLOSE_CODES.tryAgainLater, 'too much unread: reconnect');
    return false;
  };
  const send = (frame: object | string): Promise<void> => {
    const text = typeof frame === 'string' ? frame : JSON.stringify(frame);
    if (!room(text)) return Promise.resolve();
    // Resolves once written, so a subscription does not read ahead of a slow client.
    return new Promise((resolve) => ws.send(text, () => resolve()));
  };
  let unflushed = 0;
  const flushed = () => {
    unflushed -= 1;
  };
  /** A reply nobody waits for (pong, error, nack): queued only while the client reads. */
  const reply = (frame: object) => {
    const text = JSON.stringify(frame);
    if (!room(text)) return;
    if (unflushed >= MAX_UNFLUSHED_REPLIES) {
      log({
        level: 'warn',
        event: 'websocket.slow',
        message: `${unflushed} replies unread: closed`,
      });
      closeWith(CLOSE_CODES.tryAgainLater, 'too much unread: reconnect');
      return;
    }
    unflushed += 1;
    ws.send(text, flushed);
  };
  return { closeWith, send, reply };
}
