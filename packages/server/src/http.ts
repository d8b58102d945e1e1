/**
 * The HTTP edge shared by every route: where a request is under the base path, reading a JSON
 * body safely, writing JSON and error answers, and CORS (with the one origin allow-list the
 * WebSocket upgrade uses too).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ErrorBody, ErrorCode } from '@cometkit/core/protocol';
import { CometServerError } from './errors';
import type { ResolvedServerOptions } from './options';

/** A request as frameworks hand it over: maybe parsed already, maybe mounted under a prefix. */
export type FrameworkRequest = IncomingMessage & {
  body?: unknown;
  originalUrl?: string;
  baseUrl?: string;
};

/**
 * The part of the URL after the server's base path: `''` for the base itself, `'chat'` for
 * `{base}/chat`, or undefined when the request is not under the base path.
 */
export function subPath(req: FrameworkRequest, base: string): string | undefined {
  const full = pathname(req.originalUrl ?? req.url ?? '/');
  const rest = under(full, base);
  if (rest !== undefined) return rest;
  // Mounted by Express/Connect under a prefix of its own: the mount point is the base.
  if (typeof req.baseUrl === 'string' && req.baseUrl.length > 0) {
    return under(pathname(req.url ?? '/'), '/');
  }
  return undefined;
}

function pathname(url: string): string {
  const query = url.indexOf('?');
  return query === -1 ? url : url.slice(0, query);
}

function under(path: string, base: string): string | undefined {
  if (base === '/') return path.replace(/^\/+/, '').replace(/\/$/, '');
  if (path === base || path === `${base}/`) return '';
  if (path.startsWith(`${base}/`)) return path.slice(base.length + 1);
  return undefined;
}

const JSON_HEADERS = {
  'content-type': 'application/json; charset=utf-8',
  // Answers are live data: no cache on the path may keep or merge them.
  'cache-control': 'no-store',
};

/** Writes a JSON answer, unless the client has gone or an answer was already written. */
export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers?: Record<string, string>,
): void {
  if (res.headersSent || res.writableEnded || res.destroyed) return;
  const text = JSON.stringify(body);
  if (headers === undefined) {
    writeJson(res, status, text, String(Buffer.byteLength(text)));
    return;
  }
  res.writeHead(status, {
    ...JSON_HEADERS,
    'content-length': String(Buffer.byteLength(text)),
    ...headers,
  });
  res.end(text);
}

/**
 * Bodies up to this many bytes are written as strings: Node joins a string body to the header
 * and sends both in one write, where a `Buffer` body costs a cork and a `writev` of [header,
 * body] per answer (the profile of 1 000 woken polls: `end` 3x SockJS's). Above it, encoding the
 * string once per answer would cost more than the `writev`, so large bodies stay bytes.
 */
export const STRING_BODY_LIMIT = 16 * 1024;

/**
 * A serialized JSON answer shared between responses (the woken polls of one publish): built
 * once, with its byte length, in the form that is cheapest to write (see `STRING_BODY_LIMIT`).
 */
export interface EncodedJson {
  /** The text, its bytes, or its parts in order (written one after the other, not joined). */
  readonly body: string | Buffer | readonly (string | Buffer)[];
  /** The `content-length` header's value. */
  readonly length: string;
  /**
   * The body is a string of ASCII only (its byte length is its length): written as `latin1`, a
   * copy, instead of through the UTF-8 encoder (a third less CPU for a large answer).
   */
  readonly ascii?: boolean;
}

/**
 * Encodes a JSON text for {@link sendEncodedJson}. `shared`: written to many responses, so a
 * large body is encoded to bytes once; an answer written once stays a string at any size (Node
 * encodes it once, straight into the socket write, with its header).
 */
export function encodeJson(text: string, shared = true): EncodedJson {
  return sizedJson(text, Buffer.byteLength(text), shared);
}

/** {@link encodeJson} for a text whose UTF-8 byte length the caller counted already. */
export function sizedJson(text: string, bytes: number, shared = true): EncodedJson {
  const ascii = bytes === text.length;
  if (shared && bytes > STRING_BODY_LIMIT) {
    return { body: Buffer.from(text, ascii ? 'latin1' : 'utf8'), length: String(bytes) };
  }
  return { body: text, length: String(bytes), ascii };
}

/** Writes a 200 JSON answer already serialized (shared between answers; never copied). */
export function sendEncodedJson(res: ServerResponse, encoded: EncodedJson): void {
  if (res.headersSent || res.writableEnded || res.destroyed) return;
  writeJson(res, 200, encoded.body, encoded.length, encoded.ascii);
}

function writeJson(
  res: ServerResponse,
  status: number,
  body: EncodedJson['body'],
  length: string,
  ascii = false,
): void {
  // The array form: no header object to build and walk per answer.
  res.writeHead(status, [
    'content-type',
    JSON_HEADERS['content-type'],
    'cache-control',
    JSON_HEADERS['cache-control'],
    'content-length',
    length,
  ]);
  if (typeof body === 'string') {
    if (ascii) res.end(body, 'latin1');
    else res.end(body);
  } else if (Buffer.isBuffer(body)) {
    res.end(body);
  } else {
    // Parts: one socket write of them all (the response is corked until `end`), no copy.
    const last = body.length - 1;
    for (let index = 0; index < last; index += 1) res.write(body[index] as string | Buffer);
    res.end(body[last]);
  }
}

/** Writes `{"error": {code, message}}`. */
export function sendError(
  res: ServerResponse,
  status: number,
  code: ErrorCode | (string & {}),
  message: string,
  headers: Record<string, string> = {},
): void {
  const body: ErrorBody = { error: { code, message } };
  sendJson(res, status, body, headers);
}

/** True when `cors` lets `origin` in (the one allow-list of CORS and of WebSocket upgrades). */
export function corsAllows(
  cors: ResolvedServerOptions['cors'],
  origin: string | undefined,
): origin is string {
  if (cors === undefined || typeof origin !== 'string') return false;
  if (cors.origins === '*') return true;
  return typeof cors.origins === 'function' ? cors.origins(origin) : cors.origins.includes(origin);
}

/**
 * Sets the CORS headers when the request's origin is allowed. Returns true when the request
 * was a preflight, which is answered here.
 */
export function applyCors(
  req: IncomingMessage,
  res: ServerResponse,
  options: ResolvedServerOptions,
): boolean {
  const origin = req.headers.origin;
  const cors = options.cors;
  const allowed = corsAllows(cors, origin);
  if (cors) res.setHeader('vary', 'Origin');
  if (allowed && cors) {
    res.setHeader('access-control-allow-origin', origin);
    if (cors.credentials) res.setHeader('access-control-allow-credentials', 'true');
    res.setHeader('access-control-expose-headers', 'Retry-After');
  }
  if (req.method !== 'OPTIONS') return false;
  if (allowed && cors) {
    res.setHeader('access-control-allow-methods', 'GET, POST, OPTIONS');
    const asked = req.headers['access-control-request-headers'];
    res.setHeader(
      'access-control-allow-headers',
      typeof asked === 'string' && asked.length > 0 ? asked : 'content-type',
    );
    res.setHeader('access-control-max-age', String(cors.maxAge));
  }
  // A refused origin gets the same 204 without allow headers: the browser blocks the call.
  res.writeHead(204, { 'content-length': '0' });
  res.end();
  return true;
}

/**
 * True when the request says its body is `application/json` (parameters such as
 * `; charset=utf-8` allowed, case-insensitive).
 */
export function isJsonContentType(header: string | string[] | undefined): boolean {
  if (typeof header !== 'string') return false;
  const semicolon = header.indexOf(';');
  const type = (semicolon === -1 ? header : header.slice(0, semicolon)).trim().toLowerCase();
  return type === 'application/json';
}

/**
 * The body reads each drain signal stops: one `abort` listener per signal for all of them (an
 * `AbortSignal` listener added and removed per request costs tens of microseconds on a cold
 * path; a `Set` entry, next to nothing).
 */
const readsBySignal = new WeakMap<AbortSignal, Set<() => void>>();

/** The set of body reads `signal` stops, made (with its one listener) on first use. */
function readsStoppedBy(signal: AbortSignal): Set<() => void> {
  let reads = readsBySignal.get(signal);
  if (reads === undefined) {
    const stopping = new Set<() => void>();
    signal.addEventListener(
      'abort',
      () => {
        for (const stop of [...stopping]) stop();
      },
      { once: true },
    );
    readsBySignal.set(signal, stopping);
    reads = stopping;
  }
  return reads;
}

/**
 * Reads and parses the JSON body, bounded by `limit` bytes. A body a framework already parsed
 * (`req.body`) is taken as is. Throws a {@link CometServerError} (400, 413 or 415).
 *
 * Only `Content-Type: application/json` is accepted, even when a framework parsed the body:
 * a cross-site `<form>` or a `text/plain` fetch (no CORS preflight) could otherwise make a
 * visitor's browser poll or send with their cookies (CSRF). A JSON body needs a preflight,
 * which the CORS options decide.
 */
export async function readJsonBody(
  req: FrameworkRequest,
  limit: number,
  signal?: AbortSignal,
): Promise<unknown> {
  if (!isJsonContentType(req.headers['content-type'])) throw unsupportedMediaType(req);
  const parsed = req.body;
  if (parsed !== undefined && !(typeof parsed === 'object' && parsed !== null && isEmpty(parsed))) {
    if (typeof parsed === 'string') return parseJson(parsed, limit);
    if (Buffer.isBuffer(parsed)) return parseJson(parsed.toString('utf8'), limit);
    return parsed;
  }
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) throw tooLarge(limit);
  if (req.readableEnded) {
    // Someone consumed the stream: what they left in `req.body` is all there is.
    if (parsed !== undefined) return parsed;
    throw new CometServerError(400, 'bad_request', 'the body is empty');
  }
  const stoppedBy = signal === undefined ? undefined : readsStoppedBy(signal);
  const text = await new Promise<string>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const cleanup = () => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('close', onClose);
      stoppedBy?.delete(onAbort);
    };
    // The server drains: a body still arriving (maybe a client sending it slowly on purpose)
    // is not waited for; the answer closes the connection.
    const onAbort = () => {
      cleanup();
      reject(
        new CometServerError(503, 'unavailable', 'the server is shutting down; retry', {
          cause: 'drain',
        }),
      );
    };
    if (signal?.aborted) {
      onAbort();
      return;
    }
    stoppedBy?.add(onAbort);
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        cleanup();
        // Discard the rest instead of buffering it; the answer closes the connection.
        req.resume();
        reject(tooLarge(limit));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      cleanup();
      resolve(Buffer.concat(chunks).toString('utf8'));
    };
    const onError = (error: Error) => {
      cleanup();
      reject(
        new CometServerError(400, 'bad_request', 'the body could not be read', { cause: error }),
      );
    };
    const onClose = () => {
      cleanup();
      reject(new CometServerError(400, 'bad_request', 'the client went away during the body'));
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('close', onClose);
  });
  return parseJson(text, limit);
}

// Express 5 leaves `req.body` undefined without a parser, but older stacks set `{}` for a body
// they did not parse: read the stream then.
function isEmpty(value: object): boolean {
  return !Array.isArray(value) && !Buffer.isBuffer(value) && Object.keys(value).length === 0;
}

function unsupportedMediaType(req: FrameworkRequest): CometServerError {
  const given = req.headers['content-type'];
  return new CometServerError(
    415,
    'unsupported_media_type',
    `the body must be sent with Content-Type: application/json, got ${
      typeof given === 'string' && given.length > 0 ? JSON.stringify(given.slice(0, 100)) : 'none'
    }`,
  );
}

function tooLarge(limit: number): CometServerError {
  return new CometServerError(413, 'too_large', `the body is larger than ${limit} bytes`);
}

function parseJson(text: string, limit: number): unknown {
  if (Buffer.byteLength(text) > limit) throw tooLarge(limit);
  if (text.trim().length === 0) throw new CometServerError(400, 'bad_request', 'the body is empty');
  try {
    return JSON.parse(text);
  } catch {
    throw new CometServerError(400, 'bad_request', 'the body is not valid JSON');
  }
}
