/**
 * The one credential path of every transport: what the application's hooks (`authorize`,
 * `identify`, `onSend`) see as "the request". A long-poll or a stream is its own HTTP request;
 * a WebSocket is its upgrade request plus the `headers` its frames carry (browsers cannot set
 * headers on an upgrade). Either way the hooks read `req.headers.authorization` (or a cookie)
 * the same way. Cookies of a cross-origin request are stripped here when `cors.credentials` is
 * off, so a WebSocket (which CORS does not cover) follows the same rule as `fetch`.
 */

import type { IncomingMessage } from 'node:http';
import type { ResolvedServerOptions } from '../options';
import { badRequest, isRecord, type Session } from './request';
import { isHookTimeout, timeBox } from './time-box';

/** The most headers one frame may carry, and the longest name. */
const MAX_FRAME_HEADERS = 32;
const MAX_HEADER_NAME = 100;

/**
 * Headers a frame may never set: the ones a page cannot set on `fetch` either (the Fetch
 * standard's forbidden request headers), so a frame cannot claim another `Origin`, `Host` or
 * cookie than the connection really has.
 */
const FORBIDDEN = new Set([
  'accept-charset',
  'accept-encoding',
  'access-control-request-headers',
  'access-control-request-method',
  'connection',
  'content-length',
  'cookie',
  'cookie2',
  'date',
  'dnt',
  'expect',
  'host',
  'keep-alive',
  'origin',
  'referer',
  'set-cookie',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'via',
  'forwarded',
  'x-forwarded-for',
  'x-forwarded-host',
  'x-forwarded-proto',
  'x-real-ip',
]);

const TOKEN = /^[!#$%&'*+.^_`|~0-9a-z-]+$/;

/** Headers of a frame, lowercased, validated. */
export type FrameHeaders = ReadonlyMap<string, string>;

/**
 * The `headers` field of a `poll` or `send` frame: an object of header name to string value.
 * Undefined when absent. Throws `400` for anything else or for a name a frame may not set.
 */
export function parseFrameHeaders(value: unknown): FrameHeaders | undefined {
  if (value === undefined || value === null) return undefined;
  if (!isRecord(value)) throw badRequest('"headers" must be an object {name: value}');
  const entries = Object.entries(value);
  if (entries.length > MAX_FRAME_HEADERS) {
    throw badRequest(`at most ${MAX_FRAME_HEADERS} headers per frame`);
  }
  const headers = new Map<string, string>();
  for (const [raw, headerValue] of entries) {
    const name = raw.toLowerCase();
    if (name.length > MAX_HEADER_NAME || !TOKEN.test(name)) {
      throw badRequest(`"headers": ${JSON.stringify(raw.slice(0, 40))} is not a header name`);
    }
    if (FORBIDDEN.has(name) || name.startsWith('sec-') || name.startsWith('proxy-')) {
      throw badRequest(`"headers": a frame may not set ${name}`);
    }
    if (typeof headerValue !== 'string' || /[\r\n\0]/.test(headerValue)) {
      throw badRequest(`"headers": the value of ${name} must be a string on one line`);
    }
    headers.set(name, headerValue);
  }
  return headers;
}

/** True when `origin` is not the request's own host (a browser on another site or port). */
export function isCrossOrigin(req: IncomingMessage): boolean {
  const origin = req.headers.origin;
  if (typeof origin !== 'string') return false;
  return !sameHost(origin, req.headers.host);
}

// Browsers send `Origin` on every POST, same-origin ones included, and a server sees a handful
// of (origin, host) pairs: the answer is remembered instead of parsing two URLs per request.
const SAME_HOST_CACHE_SIZE = 256;
const sameHostCache = new Map<string, boolean>();

/** True when `origin`'s host (and port) is `host`, default ports and case aside. */
export function sameHost(origin: string, host: string | undefined): boolean {
  if (typeof host !== 'string' || host.length === 0) return false;
  const key = `${origin} ${host}`;
  let same = sameHostCache.get(key);
  if (same === undefined) {
    same = compareHosts(origin, host);
    // Bounded against a client that sends a new Origin with every request.
    if (sameHostCache.size >= SAME_HOST_CACHE_SIZE) sameHostCache.clear();
    sameHostCache.set(key, same);
  }
  return same;
}

function compareHosts(origin: string, host: string): boolean {
  try {
    const from = new URL(origin);
    // `Host` read with the origin's scheme, so `a.test:443` equals `https://a.test`.
    return from.host === new URL(`${from.protocol}//${host}`).host;
  } catch {
    // `Origin: null` (sandboxed frames, file: pages) or garbage: not the same origin.
    return false;
  }
}

/**
 * The request the hooks see: `req` itself when nothing changes, else a view of it (a proxy
 * of `req`, so `req.user` set by middleware and every other property still read through) with
 * other `headers`: the cookie dropped for a cross-origin request without
 * `cors.credentials`, and a frame's headers added (never replacing the upgrade's own).
 */
export function credentialRequest(
  req: IncomingMessage,
  options: ResolvedServerOptions,
  frame?: FrameHeaders,
): IncomingMessage {
  const strip = !options.cors?.credentials && isCrossOrigin(req);
  if (!strip && (frame === undefined || frame.size === 0)) return req;
  const headers: IncomingMessage['headers'] = { ...req.headers };
  if (strip) {
    // What a browser would not have sent to a `fetch` with credentials off: its cookies, and on
    // an upgrade the HTTP authentication it adds by itself (a page's own `Authorization` header
    // on a `fetch` is no ambient credential and stays).
    delete headers.cookie;
    if (req.headers.upgrade !== undefined) delete headers.authorization;
  }
  if (frame) {
    for (const [name, value] of frame) {
      if (headers[name] === undefined) headers[name] = value;
    }
  }
  // A proxy, not `Object.create(req)`: an object that becomes a prototype gets a map of its
  // own, so every request viewed that way made the property caches of Node's HTTP code that
  // later touch it polymorphic (measured: 1 000 cross-origin polls cost 30 to 50 % more server
  // CPU per fan-out round than same-origin ones).
  return new Proxy(req, {
    get: (target, key) => (key === 'headers' ? headers : Reflect.get(target, key, target)),
  });
}

/** What the credentials of a request come to: the view the hooks see and the identity. */
export interface Credentials {
  /** The request as the hooks see it (see {@link credentialRequest}). */
  req: IncomingMessage;
  /** What the `identify` hook answered: a verified user, service or session; else undefined. */
  identity: string | undefined;
}

/** Who a request is from: its credentials and the client's own words (session, user). */
export interface Caller extends Credentials, Session {}

/**
 * Runs the `identify` hook on `req`. A hook that throws or answers a non-string: anonymous; one
 * that takes longer than `hookTimeout`: a `503` (the client retries).
 */
export async function identify(
  options: ResolvedServerOptions,
  req: IncomingMessage,
): Promise<string | undefined> {
  const hook = options.identify;
  if (!hook) return undefined;
  try {
    const identity = await timeBox('identify', hook(req), options.hookTimeout);
    return typeof identity === 'string' && identity.length > 0 ? identity : undefined;
  } catch (error) {
    if (isHookTimeout(error)) {
      options.log({
        level: 'error',
        event: 'hook.timeout',
        message: error.message,
        hook: 'identify',
      });
      throw error;
    }
    options.log({
      level: 'error',
      event: 'hook.failed',
      message: 'the identify hook threw; the request is anonymous',
      hook: 'identify',
      error,
    });
    return undefined;
  }
}

/** The {@link Credentials} of `req` (with a WebSocket frame's headers). */
export async function credentialsOf(
  options: ResolvedServerOptions,
  req: IncomingMessage,
  frame?: FrameHeaders,
): Promise<Credentials> {
  const view = credentialRequest(req, options, frame);
  return { req: view, identity: await identify(options, view) };
}

/**
 * The {@link Caller} of an HTTP request: its credentials, session and user. Without an
 * `identify` hook there is nothing to wait for, and every poll is answered without the three
 * promises and turns of the hook's path (the common case on a busy server).
 */
export function callerOf(
  options: ResolvedServerOptions,
  req: IncomingMessage,
  session: Session,
): Caller | Promise<Caller> {
  const { sessionGuid, userId } = session;
  if (!options.identify) {
    return { req: credentialRequest(req, options), identity: undefined, sessionGuid, userId };
  }
  // A literal, not a spread of the credentials: V8 gives every spread copy a hidden class of
  // its own (a Map and a DescriptorArray, about 200 bytes more per held poll).
  return credentialsOf(options, req).then(({ req: view, identity }) => ({
    req: view,
    identity,
    sessionGuid,
    userId,
  }));
}
