/**
 * The gate of a WebSocket upgrade before `ws` takes it: whether its `Origin` may open a socket
 * (CORS does not apply to WebSocket), and the plain HTTP error answer of a refused upgrade.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { ErrorBody } from '@cometkit/core/protocol';
import { sameHost } from '../engine/credentials';
import { corsAllows } from '../http';
import type { ResolvedServerOptions } from '../options';

/**
 * True when the upgrade's `Origin` may open a socket. CORS does not apply to WebSocket, so
 * without this check any page could open one with its visitor's cookies (cross-site WebSocket
 * hijacking). Allowed: no `Origin` (not a browser), an `Origin` whose host is the request's
 * `Host` (same origin), and the origins of `cors.origins`. An allowed cross-origin upgrade
 * without `cors.credentials` reaches the hooks without its cookies (`credentialRequest`).
 */
export function originAllowed(req: IncomingMessage, options: ResolvedServerOptions): boolean {
  const origin = req.headers.origin;
  // Browsers always send Origin on an upgrade; a request without one is not from a page.
  if (typeof origin !== 'string') return true;
  return sameHost(origin, req.headers.host) || corsAllows(options.cors, origin);
}

const REASONS: Record<number, string> = {
  403: 'Forbidden',
  404: 'Not Found',
  503: 'Service Unavailable',
};

/** Answers an upgrade with an ordinary HTTP error (JSON body) and closes the connection. */
export function refuse(
  socket: Duplex,
  status: number,
  code: string,
  message: string,
  extra: Record<string, string> = {},
): void {
  const body = JSON.stringify({ error: { code, message } } satisfies ErrorBody);
  const headers = {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': String(Buffer.byteLength(body)),
    'Cache-Control': 'no-store',
    Connection: 'close',
    ...extra,
  };
  let head = `HTTP/1.1 ${status} ${REASONS[status] ?? 'Error'}\r\n`;
  for (const [name, value] of Object.entries(headers)) head += `${name}: ${value}\r\n`;
  if (socket.writable) socket.end(`${head}\r\n${body}`);
  else socket.destroy();
}
