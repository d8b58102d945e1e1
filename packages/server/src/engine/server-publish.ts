/**
 * The server's publish paths: every publish checked once at the edge (topic name, presence
 * topics, JSON depth) before the broker stores it, once per id within `idempotencyTtl`, and
 * from the publish API after its per-topic rate limit.
 */
import { topicProblem } from '@cometkit/core/protocol';
import type { Broker, BrokerPublishOptions } from '../broker';
import type { ResolvedServerOptions } from '../options';
import { type PublishMessage, publishOnce } from '../publish';
import type { RateLimiter } from '../rate-limit';
import { type PresenceKeeper, presenceBase } from './presence';
import { badRequest, jsonTextProblem } from './request';

/** The publish functions of one server. */
export interface ServerPublish {
  /** Publishes through the broker after checking the topic and the data. */
  publish(topic: string, data: unknown, options?: BrokerPublishOptions): Promise<string>;
  /** {@link ServerPublish.publish}, once per `id` (when given) within `idempotencyTtl`. */
  publishWithId(topic: string, data: unknown, id: string | undefined): Promise<string>;
  /** A publish from outside (the publish API): per-topic rate limit, then once per id. */
  publishFromApi(message: PublishMessage): Promise<string>;
}

/** Creates the publish functions of one server. */
export function createServerPublish(
  broker: Broker,
  resolved: ResolvedServerOptions,
  presence: PresenceKeeper | undefined,
  limits: RateLimiter | undefined,
): ServerPublish {
  // The last topic that passed validation: a burst to one topic checks its name once, not
  // once per message (the broker trusts what the server hands it).
  let validTopic: string | undefined;
  const publish = (
    topic: string,
    data: unknown,
    options?: BrokerPublishOptions,
  ): Promise<string> => {
    if (topic !== validTopic) {
      const problem =
        topicProblem(topic) ??
        (presence && presenceBase(topic) !== undefined
          ? `topic "${topic}" carries presence: only the server's presence writes to it`
          : undefined);
      if (problem !== undefined) {
        return Promise.reject(badRequest(problem));
      }
      validTopic = topic;
    }
    // Encoded here, once, and checked on its text before anything is stored (a message too deep
    // for clients to read would otherwise sit in every answer that holds it); the broker keeps
    // the text instead of encoding `data` again.
    let json: string | undefined;
    try {
      json = JSON.stringify(data);
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      return Promise.reject(badRequest(`"data" cannot be sent as JSON: ${reason}`));
    }
    if (json === undefined) return broker.publish(topic, data, options);
    const problem = jsonTextProblem(json, resolved.maxDepth);
    if (problem !== undefined) return Promise.reject(badRequest(`"data": ${problem}`));
    return broker.publish(topic, data, options === undefined ? { json } : { ...options, json });
  };
  const publishWithId = (topic: string, data: unknown, id: string | undefined) =>
    publishOnce(
      publish,
      id === undefined ? { topic, data } : { topic, data, id },
      resolved.idempotencyTtl,
    );
  // A publish from outside (the publish API): per-topic rate limit, then once per id.
  const publishFromApi = async (message: PublishMessage): Promise<string> => {
    await limits?.publish(message.topic);
    return publishWithId(message.topic, message.data, message.id);
  };

  return { publish, publishWithId, publishFromApi };
}
