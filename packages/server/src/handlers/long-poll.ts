import type { ServerResponse } from 'node:http';
import { type FrameworkRequest, readJsonBody, sendJson } from '../http';
import { answerLegacyPoll, answerPoll, holdTime, parsePollRequest } from '../poll';
import type { HandlerContext } from './context';

/**
 * `POST {base}`: one poll, answered at once or held. The request registers itself for
 * draining and unregisters (listener, timers) the moment it is answered or its client leaves.
 */
export async function handleLongPoll(
  context: HandlerContext,
  req: FrameworkRequest,
  res: ServerResponse,
): Promise<void> {
  const body = await readJsonBody(req, context.options.bodyLimit);
  const poll = parsePollRequest(body, context.options.maxTopics);
  const controller = new AbortController();
  // `close` on the response fires when it is finished or when the socket goes away first.
  const onClose = () => {
    if (!res.writableEnded) controller.abort('gone');
  };
  res.on('close', onClose);
  context.held.add(controller);
  try {
    const options = { req, holdMs: holdTime(poll, context.options), signal: controller.signal };
    const answer = poll.legacy
      ? await answerLegacyPoll(context, poll, options)
      : await answerPoll(context, poll, options);
    if (answer !== undefined) sendJson(res, 200, answer);
  } finally {
    context.held.delete(controller);
    res.off('close', onClose);
  }
}
