/**
 * A validated send, whichever transport carried it (HTTP or a WebSocket frame): `authorize`,
 * the idempotency window (a repeated id answers the first message id and publishes nothing),
 * then `onSend` or a plain publish.
 */
import type { IncomingMessage } from 'node:http';
import { runOnce } from '../publish';
import { authorizeTopic, refusalError } from './authorize';
import type { EngineContext } from './context';
import type { ValidSend } from './request';

/** The outcome of a send, whichever transport carried it. */
export interface SendOutcome {
  /** The client's id, when it gave one. */
  id: string | undefined;
  messageId: string;
}

/** Runs a validated send. Throws a `CometServerError` to refuse. */
export async function performSend(
  context: EngineContext,
  req: IncomingMessage,
  send: ValidSend,
  signal?: AbortSignal,
): Promise<SendOutcome> {
  const refusal = await authorizeTopic(context, req, 'send', send.topic, send);
  if (refusal) throw refusalError(refusal);
  if (send.id === undefined) {
    return { id: undefined, messageId: await runOnSend(context, req, send) };
  }
  // Scoped by session: another client reusing an id cannot read or block this one's sends.
  const key = `cometkit:send:${send.sessionGuid ?? ''}:${send.topic}:${send.id}`;
  const messageId = await runOnce(
    context.broker,
    key,
    {
      ttlMs: context.options.idempotencyTtl,
      signal,
      // Published: this answer stands even if recording it fails (a 503 here would make the
      // client retry into a key left pending and wait out the idempotency window).
      onRecordFailed: (error) =>
        context.options.log({
          level: 'warn',
          event: 'send.record-failed',
          message:
            'published, but the idempotency record could not be stored: a retry may publish again',
          topic: send.topic,
          error,
        }),
    },
    () => runOnSend(context, req, send),
  );
  return { id: send.id, messageId };
}

async function runOnSend(
  context: EngineContext,
  req: IncomingMessage,
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
