/**
 * The HTTP publish API, opt-in: `POST {base}/_publish` (or the same handler on an internal
 * port) lets a cron job, a worker or a service in another language publish without running
 * cometkit. Server to server: it takes a server key (`Authorization: Bearer …`, compared in
 * constant time) or your own `authorize` hook, never the browser's cookies. One message
 * `{topic, data, id?}` or a batch `{messages: […]}`; a message with an `id` is published once
 * per id within the idempotency window, whichever instance (or Redis publisher) gets it.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { PublishAnswer } from '@cometkit/core/protocol';
import { CometServerError, toServerError } from './errors';
import { type FrameworkRequest, readJsonBody, sendJson } from './http';
import { type PublishMessage, parsePublishMessage } from './publish';

/** The `publishApi` option of `createCometServer`. Give `key`, `authorize`, or both. */
export interface PublishApiOptions {
  /**
   * The server key(s): a request must send `Authorization: Bearer <key>` with one of them
   * (several let you rotate a key without downtime). Use a long random string.
   * @default undefined (then `authorize` decides alone)
   */
  key?: string | readonly string[];
  /**
   * Your own check (mTLS, a signed header, a network check…): `true` allows. With `key` too,
   * both must pass.
   * @default undefined (then `key` decides alone)
   */
  authorize?: (req: IncomingMessage) => boolean | Promise<boolean>;
  /**
   * Serves the API at `{path}/_publish` of the main handler. Set `false` to serve it only
   * through `comet.publishHandler` (e.g. on an internal port).
   * @default true
   */
  route?: boolean;
  /**
   * The most messages in one batch; more get `413 too_large`.
   * @default 100
   */
  maxBatch?: number;
  /**
   * The largest request body, in bytes; larger ones get `413 too_large`.
   * @default 1_048_576 (1 MiB)
   */
  bodyLimit?: number;
}

/** The publish API options with defaults filled in. */
export interface ResolvedPublishApiOptions {
  keys: readonly Buffer[];
  authorize: ((req: IncomingMessage) => boolean | Promise<boolean>) | undefined;
  route: boolean;
  maxBatch: number;
  bodyLimit: number;
}

const digest = (text: string) => createHash('sha256').update(text).digest();

/** Checks the options once; throws a TypeError for a bad one. */
export function resolvePublishApiOptions(options: PublishApiOptions): ResolvedPublishApiOptions {
  const keys =
    options.key === undefined ? [] : typeof options.key === 'string' ? [options.key] : options.key;
  if (!Array.isArray(keys) || keys.some((key) => typeof key !== 'string' || key.length < 16)) {
    throw new TypeError(
      'createCometServer: publishApi.key must be strings of 16 characters or more',
    );
  }
  if (keys.length === 0 && typeof options.authorize !== 'function') {
    throw new TypeError('createCometServer: publishApi needs a key or an authorize hook');
  }
  const positive = (name: string, value: number | undefined, fallback: number) => {
    if (value === undefined) return fallback;
    if (!Number.isInteger(value) || value < 1) {
      throw new TypeError(`createCometServer: publishApi.${name} must be an integer >= 1`);
    }
    return value;
  };
  return {
    keys: keys.map(digest),
    authorize: options.authorize,
    route: options.route ?? true,
    maxBatch: positive('maxBatch', options.maxBatch, 100),
    bodyLimit: positive('bodyLimit', options.bodyLimit, 1_048_576),
  };
}

/** True when `header` is `Bearer <one of keys>`; every key is compared, in constant time. */
function keyMatches(header: string | undefined, keys: readonly Buffer[]): boolean {
  if (typeof header !== 'string') return false;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  if (!match?.[1]) return false;
  // Digests have one length, so timingSafeEqual never throws and the key's length leaks nothing.
  const given = digest(match[1]);
  let found = false;
  for (const key of keys) found = timingSafeEqual(given, key) || found;
  return found;
}

function unauthorized(res: ServerResponse): CometServerError {
  res.setHeader('www-authenticate', 'Bearer');
  return new CometServerError(401, 'unauthorized', 'a valid publish key is required');
}

/**
 * Serves one publish API request: `POST` only, authorized, then one message or a batch through
 * `publish` (which limits, publishes once per id and counts). Throws what the route answers.
 */
export async function handlePublishApi(
  options: ResolvedPublishApiOptions,
  publish: (message: PublishMessage) => Promise<string>,
  req: FrameworkRequest,
  res: ServerResponse,
): Promise<void> {
  if (req.method !== 'POST') {
    throw new CometServerError(405, 'method_not_allowed', 'use POST here');
  }
  if (options.keys.length > 0 && !keyMatches(req.headers.authorization, options.keys)) {
    throw unauthorized(res);
  }
  if (options.authorize && (await options.authorize(req)) !== true) throw unauthorized(res);
  const body = await readJsonBody(req, options.bodyLimit);
  const batch =
    typeof body === 'object' && body !== null && !Array.isArray(body) && 'messages' in body
      ? (body as { messages: unknown }).messages
      : undefined;
  if (batch === undefined) {
    const message = parsePublishMessage(body);
    sendJson(res, 200, answer(message, await publish(message)));
    return;
  }
  if (!Array.isArray(batch)) {
    throw new CometServerError(400, 'bad_request', '"messages" must be an array');
  }
  if (batch.length > options.maxBatch) {
    throw new CometServerError(
      413,
      'too_large',
      `at most ${options.maxBatch} messages in one batch, got ${batch.length}`,
    );
  }
  // All checked before any is published: a bad batch publishes nothing.
  const messages = batch.map((raw, index) => {
    try {
      return parsePublishMessage(raw);
    } catch (error) {
      throw atIndex(error, index, false);
    }
  });
  const results: PublishAnswer[] = [];
  for (const [index, message] of messages.entries()) {
    try {
      results.push(answer(message, await publish(message)));
    } catch (error) {
      throw atIndex(error, index, index > 0);
    }
  }
  sendJson(res, 200, { results });
}

function answer(message: PublishMessage, messageId: string): PublishAnswer {
  return message.id === undefined ? { messageId } : { id: message.id, messageId };
}

/** The error of message `index` of a batch, saying which one (and that earlier ones went out). */
function atIndex(error: unknown, index: number, earlierPublished: boolean): unknown {
  const known = toServerError(error);
  if (!known) return error;
  const after = earlierPublished
    ? '; the messages before it were published (retry with the same ids to publish the rest once)'
    : '';
  return new CometServerError(
    known.status,
    known.code,
    `messages[${index}]: ${known.message}${after}`,
    {
      cause: error,
      ...(known.retryAfter === undefined ? {} : { retryAfter: known.retryAfter }),
    },
  );
}
