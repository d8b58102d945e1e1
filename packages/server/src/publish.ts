/**
 * Publishing from outside a client's send: the server's own code (`comet.publish`), the HTTP
 * publish API and the Redis publisher of `@cometkit/redis` (a worker with no HTTP server). One
 * home for what all three check (topic, id, data) and for how a publish with an `id` happens
 * once: the broker records the id with the message in one atomic step, so a retry on any
 * instance, or from another process on the same Redis, answers the first message id, even
 * when the first attempt's process died right after publishing.
 */
import { topicProblem } from '@cometkit/core/protocol';
import type { BrokerPublishOptions } from './broker';
import { CometServerError } from './errors';
import { encodeKey } from './idempotency';

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
 * any instance and a worker on the same broker agree. Length-prefixed parts (see
 * `idempotency.ts`): never equal to another topic's or id's key, nor to a send's key.
 */
export function publishKey(topic: string, id: string): string {
  return encodeKey(['publish', topic, id]);
}

/**
 * Publishes `message` through `publish`, once per `message.id` within `ttlMs` when it has one
 * (the broker checks the key, publishes and records the id in one step). The building block of
 * `comet.publish`, the publish API and `@cometkit/redis`'s `createRedisPublisher`.
 */
export function publishOnce(
  publish: (topic: string, data: unknown, options?: BrokerPublishOptions) => Promise<string>,
  message: PublishMessage,
  ttlMs: number,
): Promise<string> {
  const { topic, data, id } = message;
  if (id === undefined) return publish(topic, data);
  return publish(topic, data, { idempotency: { key: publishKey(topic, id), ttlMs } });
}
