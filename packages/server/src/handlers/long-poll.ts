import type { ServerResponse } from 'node:http';
import { type FrameworkRequest, readJsonBody, sendJson, sendJsonBytes } from '../http';
import { answerLegacyPoll, answerPoll, Hold, holdTime, parsePollRequest } from '../poll';
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
  const poll = parsePollRequest(
    await readJsonBody(req, context.options.bodyLimit),
    context.options.maxTopics,
  );
  // A Hold, not an AbortController: thousands are held at once and an EventTarget is heavy.
  const hold = new Hold();
  // `close` on the response fires when it is finished or when the socket goes away first.
  const onClose = () => {
    if (!res.writableEnded) hold.abort('gone');
  };
  res.on('close', onClose);
  context.held.add(hold);
  try {
    const options = { req, holdMs: holdTime(poll, context.options), signal: hold };
    const answer = poll.legacy
      ? await answerLegacyPoll(context, poll, options)
      : await answerPoll(context, poll, options);
    if (Buffer.isBuffer(answer)) sendJsonBytes(res, answer);
    else if (answer !== undefined) sendJson(res, 200, answer);
  } finally {
    context.held.delete(hold);
    res.off('close', onClose);
  }
}
