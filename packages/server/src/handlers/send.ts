/** `POST {base}/{topic}`: a send over HTTP, answered `{id, messageId}` (or an error body). */
import type { ServerResponse } from 'node:http';
import type { EngineContext } from '../engine/context';
import { callerOf } from '../engine/credentials';
import { parseSendRequest, topicFromPath } from '../engine/request';
import { performSend } from '../engine/send';
import { type FrameworkRequest, readJsonBody, sendJson } from '../http';

/** Handles one HTTP send; `segment` is the path after the base (the URL-encoded topic). */
export async function handleSend(
  context: EngineContext,
  req: FrameworkRequest,
  res: ServerResponse,
  segment: string,
): Promise<void> {
  const topic = topicFromPath(segment);
  const send = parseSendRequest(
    topic,
    await readJsonBody(req, context.options.bodyLimit, context.drain),
    context.options.maxDepth,
  );
  const caller = await callerOf(context.options, req, send);
  const outcome = await performSend(context, caller, send);
  sendJson(
    res,
    200,
    outcome.id === undefined
      ? { messageId: outcome.messageId }
      : { id: outcome.id, messageId: outcome.messageId },
  );
}
