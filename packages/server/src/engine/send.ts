/**
 * A validated send, whichever transport carried it (HTTP or a WebSocket frame): `authorize`,
 * then `onSend` or a plain publish, once per client id: the publish carries the send's
 * idempotency key, and the broker checks the key, publishes and records the message id in one
 * atomic step (see `BrokerPublishOptions`), so a repeat answers the first message id at once,
 * whichever instance took the first attempt and whenever its process died.
 */
import { type SendScope, sendKey, sendScope } from '../idempotency';
import { authorizeTopic, refusalError } from './authorize';
import type { EngineContext } from './context';
import type { Caller } from './credentials';
import type { ValidSend } from './request';
import { timeBox } from './time-box';

/** The outcome of a send, whichever transport carried it. */
export interface SendOutcome {
  /** The client's id, when it gave one. */
  id: string | undefined;
  messageId: string;
}

/** Runs a validated send. Throws a `CometServerError` to refuse. */
export async function performSend(
  context: EngineContext,
  caller: Caller,
  send: ValidSend,
): Promise<SendOutcome> {
  await context.limits?.send({
    req: caller.req,
    identity: caller.identity,
    sessionGuid: send.sessionGuid,
    userId: send.userId,
  });
  const refusal = await authorizeTopic(context, caller, 'send', send.topic);
  if (refusal) throw refusalError(refusal);
  const scope =
    send.id === undefined
      ? undefined
      : sendScope({ ...send, identity: caller.identity }, context.options.identify !== undefined);
  return { id: send.id, messageId: await runOnSend(context, caller, send, scope) };
}

async function runOnSend(
  context: EngineContext,
  { req, identity }: Caller,
  send: ValidSend,
  scope: SendScope | undefined,
): Promise<string> {
  // Counted only for a send that is allowed: a refused send takes nothing from the topic's
  // publishes (a repeat of an earlier send counts again: the broker knows it is one, not us).
  await context.limits?.publish(send.topic);
  const { id, topic } = send;
  const ttlMs = context.options.idempotencyTtl;
  const onSend = context.options.onSend;
  if (!onSend) {
    if (scope === undefined || id === undefined) return context.publish(topic, send.data);
    return context.publish(topic, send.data, {
      idempotency: { key: sendKey(scope, topic, id), ttlMs },
    });
  }
  // The hook's n-th publish carries the n-th key: run again for a retry, it publishes nothing
  // new and gets the same ids back.
  let publishes = 0;
  const publish =
    scope === undefined || id === undefined
      ? (to: string, data: unknown) => context.publish(to, data)
      : (to: string, data: unknown) => {
          publishes += 1;
          return context.publish(to, data, {
            idempotency: { key: sendKey(scope, topic, id, publishes), ttlMs },
          });
        };
  const messageId = await timeBox(
    'onSend',
    onSend({
      req,
      topic,
      id,
      data: send.data,
      sessionGuid: send.sessionGuid,
      userId: send.userId,
      identity,
      publish,
    }),
    context.options.hookTimeout,
  );
  if (typeof messageId !== 'string') {
    throw new TypeError('the onSend hook must resolve with the message id (a string)');
  }
  return messageId;
}
