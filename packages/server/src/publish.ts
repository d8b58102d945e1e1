/**
 * Publishing from outside a client's send: the server's own code (`comet.publish`), the HTTP
 * publish API and the Redis publisher of `@cometkit/redis` (a worker with no HTTP server). One
 * home for what all three check (topic, id, data) and for how a publish with an `id` happens
 * once: a reservation in the broker's idempotency store, so a retry on any instance, or from
 * another process on the same Redis, answers the first message id.
 */
import { topicProblem } from '@cometkit/core/protocol';
import type { IdempotencyStore } from './broker';
import { CometServerError } from './errors';

/** One message to publish. */
export interface PublishMessage {
  topic: string;
  /** Any JSON value. */
  data: unknown;
  /**
   * Made by the publisher (e.g. a job id + step): a repeat within the idempotency window
   * publishes nothing and answers the first message id. 1 to 200 characters.
   */
  id?: string;
}

/** The options of a publish from code (`comet.publish`, the Redis publisher). */
export interface PublishOptions {
  /** Publishes once per `id` within the idempotency window; see {@link PublishMessage.id}. */
  id?: string;
}

/** The longest publish id, as for a send's id. */
export const MAX_PUBLISH_ID_LENGTH = 200;

// While another publisher (maybe in another process) holds the same id, check back this often,
// this many times, before giving up with 503.
const PENDING_CHECK_MS = 50;
const PENDING_CHECKS = 100;

/** `undefined` when `id` may name a publish, else what is wrong with it. */
export function publishIdProblem(id: unknown): string | undefined {
  if (id === undefined) return undefined;
  if (typeof id !== 'string' || id.length === 0 || id.length > MAX_PUBLISH_ID_LENGTH) {
    return `"id" must be a string of 1 to ${MAX_PUBLISH_ID_LENGTH} characters`;
  }
  return undefined;
}

/**
 * Validates one message to publish (untrusted JSON from the publish API, or a worker's call):
 * an object with a valid `topic`, a `data` and an optional `id`. Throws `400 bad_request`.
 */
export function parsePublishMessage(raw: unknown): PublishMessage {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new CometServerError(400, 'bad_request', 'a message must be a JSON object');
  }
  const { topic, data, id } = raw as Record<string, unknown>;
  const problem = topicProblem(topic);
  if (problem !== undefined) throw new CometServerError(400, 'bad_request', problem);
  if (!('data' in raw)) throw new CometServerError(400, 'bad_request', '"data" is required');
  const idProblem = publishIdProblem(id);
  if (idProblem !== undefined) throw new CometServerError(400, 'bad_request', idProblem);
  return id === undefined
    ? { topic: topic as string, data }
    : { topic: topic as string, data, id: id as string };
}

/**
 * The idempotency key of a publish: by topic and id, whoever publishes, so the publish API on
 * any instance and a worker on the same broker agree (sends have their own keys, per session).
 */
export function publishKey(topic: string, id: string): string {
  return `cometkit:publish:${topic}:${id}`;
}

/** How {@link runOnce} runs. */
export interface RunOnceOptions {
  /** How long the answer is remembered, in ms. */
  ttlMs: number;
  /** Stops waiting for a concurrent repeat (the client went away): `503` at once. */
  signal?: AbortSignal;
  /** The work was done but its answer could not be stored: a retry may run it again. */
  onRecordFailed?: (error: unknown) => void;
}

/**
 * Runs `work` once per `key` across everyone sharing `store`: the first caller runs it and
 * stores its answer for `ttlMs`; a repeat answers that; a concurrent repeat waits for it (up to
 * 5 s, then `503 unavailable`). A failed `work` frees the key so a retry may run it.
 */
export async function runOnce(
  store: IdempotencyStore,
  key: string,
  options: RunOnceOptions,
  work: () => Promise<string>,
): Promise<string> {
  const { ttlMs, signal, onRecordFailed } = options;
  for (let check = 0; check < PENDING_CHECKS; check += 1) {
    const reservation = await store.reserve(key, ttlMs);
    if (reservation.state === 'done') return reservation.value;
    if (reservation.state === 'new') {
      let value: string;
      try {
        value = await work();
      } catch (error) {
        await store.release(key).catch(() => {});
        throw error;
      }
      // Done: this answer stands even if recording it fails (the caller may log it).
      await store.complete(key, value, ttlMs).catch((error: unknown) => onRecordFailed?.(error));
      return value;
    }
    if (signal?.aborted) break;
    await new Promise((resolve) => setTimeout(resolve, PENDING_CHECK_MS));
  }
  throw new CometServerError(503, 'unavailable', 'the same request is still being processed');
}

/**
 * Publishes `message` through `publish`, once per `message.id` within `ttlMs` when it has one.
 * The building block of the publish API and of `@cometkit/redis`'s `createRedisPublisher`.
 */
export function publishOnce(
  store: IdempotencyStore,
  message: PublishMessage,
  options: RunOnceOptions,
  publish: (topic: string, data: unknown) => Promise<string>,
): Promise<string> {
  const { topic, data, id } = message;
  if (id === undefined) return publish(topic, data);
  return runOnce(store, publishKey(topic, id), options, () => publish(topic, data));
}
