import type { ServerResponse } from 'node:http';
import { topicProblem } from '@cometkit/core/protocol';
import { CometServerError } from '../errors';
import { type FrameworkRequest, readJsonBody, sendJson } from '../http';
import { checkTopic, parseEnvelope } from '../poll';
import type { HandlerContext } from './context';

// While another request (maybe on another instance) is publishing the same send, check back
// this often, this many times, before answering 503.
const PENDING_CHECK_MS = 50;
const PENDING_CHECKS = 100;

/** The topic named by the path after the base, or a `400` error. */
export function topicFromPath(segment: string): string {
  let topic: string;
  try {
    topic = decodeURIComponent(segment);
  } catch {
    throw new CometServerError(
      400,
      'bad_request',
      'the topic in the path is not valid URL encoding',
    );
  }
  const problem = topicProblem(topic);
  if (problem !== undefined) throw new CometServerError(400, 'bad_request', problem);
  return topic;
}

/** The outcome of a send, whichever transport carried it. */
export interface SendOutcome {
  /** The client's id, when it gave one. */
  id: string | undefined;
  messageId: string;
}

/** The parts of a send request, validated. */
export interface ValidSend {
  topic: string;
  id: string | undefined;
  data: unknown;
  sessionGuid: string | undefined;
  userId: string | undefined;
}

/** Validates a send body for `topic`; throws `400 bad_request`. */
export function parseSendRequest(topic: string, raw: unknown): ValidSend {
  const { legacy, sessionGuid, userId, body } = parseEnvelope(raw);
  const id = body.id;
  if (id !== undefined || !legacy) {
    if (typeof id !== 'string' || id.length === 0 || id.length > 200) {
      throw new CometServerError(
        400,
        'bad_request',
        '"id" must be a string of 1 to 200 characters',
      );
    }
  }
  if (!('data' in body)) throw new CometServerError(400, 'bad_request', '"data" is required');
  return { topic, id: id as string | undefined, data: body.data, sessionGuid, userId };
}

/**
 * Runs a validated send: `authorize`, then the idempotency window (a repeated id answers the
 * first message id and publishes nothing), then `onSend`. Throws a `CometServerError` to refuse.
 */
export async function performSend(
  context: HandlerContext,
  req: FrameworkRequest,
  send: ValidSend,
  signal?: AbortSignal,
): Promise<SendOutcome> {
  const refusal = await checkTopic(context, req, 'send', send.topic, send.sessionGuid, send.userId);
  if (refusal) {
    const status = refusal.code === 'unauthorized' ? 401 : refusal.code === 'internal' ? 500 : 403;
    throw new CometServerError(status, refusal.code, refusal.message);
  }
  if (send.id === undefined)
    return { id: undefined, messageId: await runOnSend(context, req, send) };
  const ttl = context.options.idempotencyTtl;
  // Scoped by session: another client reusing an id cannot read or block this one's sends.
  const key = `cometkit:send:${send.sessionGuid ?? ''}:${send.topic}:${send.id}`;
  for (let check = 0; check < PENDING_CHECKS; check += 1) {
    const reservation = await context.broker.reserve(key, ttl);
    if (reservation.state === 'done') return { id: send.id, messageId: reservation.value };
    if (reservation.state === 'new') {
      let messageId: string;
      try {
        messageId = await runOnSend(context, req, send);
      } catch (error) {
        await context.broker.release(key).catch(() => {});
        throw error;
      }
      // Published: this answer stands even if recording it fails (a 503 here would make the
      // client retry into a key left pending and wait out the idempotency window).
      await context.broker.complete(key, messageId, ttl).catch((error: unknown) =>
        context.options.log({
          level: 'warn',
          event: 'send.record-failed',
          message:
            'published, but the idempotency record could not be stored: a retry may publish again',
          topic: send.topic,
          error,
        }),
      );
      return { id: send.id, messageId };
    }
    if (signal?.aborted) break;
    await new Promise((resolve) => setTimeout(resolve, PENDING_CHECK_MS));
  }
  throw new CometServerError(503, 'unavailable', 'the same send is still being processed');
}

async function runOnSend(
  context: HandlerContext,
  req: FrameworkRequest,
  send: ValidSend,
): Promise<string> {
  const onSend = context.options.onSend;
  if (!onSend) return context.publish(send.topic, send.data);
  const messageId = await onSend({
    req,
    topic: send.topic,
    data: send.data,
    sessionGuid: send.sessionGuid,
    userId: send.userId,
    publish: context.publish,
  });
  if (typeof messageId !== 'string') {
    throw new TypeError('the onSend hook must resolve with the message id (a string)');
  }
  return messageId;
}

/** `POST {base}/{topic}`: a send over HTTP. */
export async function handleSend(
  context: HandlerContext,
  req: FrameworkRequest,
  res: ServerResponse,
  segment: string,
): Promise<void> {
  const topic = topicFromPath(segment);
  const body = await readJsonBody(req, context.options.bodyLimit);
  const send = parseSendRequest(topic, body);
  const controller = new AbortController();
  const onClose = () => {
    if (!res.writableEnded) controller.abort('gone');
  };
  res.on('close', onClose);
  try {
    const outcome = await performSend(context, req, send, controller.signal);
    sendJson(
      res,
      200,
      outcome.id === undefined
        ? { messageId: outcome.messageId }
        : { id: outcome.id, messageId: outcome.messageId },
    );
  } finally {
    res.off('close', onClose);
  }
}
