/**
 * Request routing: which handler serves a path under the server's base (long-poll, stream,
 * publish API, presence leave, send), the `405`/`404`/`426`/`503` answers in between, the count
 * of open streams, and the route name the answer-status metric is counted under.
 */
import type { ServerResponse } from 'node:http';
import { LEAVE_PATH, PUBLISH_PATH, STREAM_PATH, WEBSOCKET_PATH } from '@cometkit/core/protocol';
import { CometServerError } from '../errors';
import { handleLongPoll } from '../handlers/long-poll';
import { handleSend } from '../handlers/send';
import { handleStream } from '../handlers/stream';
import { applyCors, type FrameworkRequest, readJsonBody, sendError, sendJson } from '../http';
import type { RouteName } from '../observer';
import type { PublishMessage } from '../publish';
import { handlePublishApi } from '../publish-api';
import type { EngineContext } from './context';

/** What {@link createRouter} answers: the router and its count of open streams. */
export interface Router {
  /** Serves `rest`, the path under the base; rejects with what `fail` answers. */
  route(req: FrameworkRequest, res: ServerResponse, rest: string): Promise<void>;
  /** Open streams right now. */
  streams(): number;
}

/** Creates the router of one server. */
export function createRouter(
  context: EngineContext,
  publishFromApi: (message: PublishMessage) => Promise<string>,
  isDraining: () => boolean,
): Router {
  const resolved = context.options;
  const presence = context.presence;
  let streams = 0;

  const route = async (req: FrameworkRequest, res: ServerResponse, rest: string): Promise<void> => {
    if (applyCors(req, res, resolved)) return;
    if (isDraining()) {
      throw new CometServerError(503, 'unavailable', 'the server is shutting down; retry');
    }
    if (rest === '') {
      if (req.method !== 'POST') return methodNotAllowed(res, 'POST, OPTIONS');
      return handleLongPoll(context, req, res);
    }
    if (rest === STREAM_PATH) {
      if (req.method !== 'POST') return methodNotAllowed(res, 'POST, OPTIONS');
      streams += 1;
      try {
        return await handleStream(context, req, res);
      } finally {
        streams -= 1;
      }
    }
    if (rest === WEBSOCKET_PATH) {
      // Reached only by a plain request: upgrades go through handleUpgrade.
      return sendError(res, 426, 'upgrade_required', 'open a WebSocket here', {
        upgrade: 'websocket',
      });
    }
    if (rest === PUBLISH_PATH && resolved.publishApi?.route) {
      return handlePublishApi(resolved.publishApi, publishFromApi, req, res);
    }
    if (rest === LEAVE_PATH && presence) {
      if (req.method !== 'POST') return methodNotAllowed(res, 'POST, OPTIONS');
      await presence.leave(await readJsonBody(req, resolved.bodyLimit));
      return sendJson(res, 200, {});
    }
    if (rest.startsWith('_')) {
      throw new CometServerError(404, 'not_found', `path "${rest}" is not served here`);
    }
    if (req.method !== 'POST') return methodNotAllowed(res, 'POST, OPTIONS');
    return handleSend(context, req, res, rest);
  };

  return { route, streams: () => streams };
}

/** The route of a path under the base, for the answer-status metric. */
export function routeName(rest: string): RouteName {
  if (rest === '') return 'poll';
  if (rest === STREAM_PATH) return 'stream';
  if (rest === PUBLISH_PATH) return 'publish';
  if (rest.startsWith('_')) return 'other';
  return 'send';
}

function methodNotAllowed(res: ServerResponse, allow: string): void {
  sendError(res, 405, 'method_not_allowed', `use ${allow.split(',')[0]} here`, { allow });
}
