/**
 * Long-polling: one POST per poll, held by the server until it has something or its hold ends.
 * One `open` is one poll; the client opens the next with its updated cursors.
 */
import { ProtocolError, TimeoutError } from '../errors';
import { httpError, networkError } from '../http';
import { parseJson, parsePollAnswer } from '../parse';
import type { TransportDefinition, TransportFactory } from './types';

/** The long-poll transport (`longpoll`): works through every proxy; the floor of the fallback. */
export const createLongPollTransport: TransportFactory = (context) => ({
  name: 'longpoll',
  open(request, handlers) {
    const { environment: env } = context;
    const controller = new AbortController();
    let done = false;
    let closed = false;
    const finish = () => {
      const first = !done;
      done = true;
      env.clearTimeout(watchdog);
      return first;
    };
    const limit = (request.wait ?? 0) + context.watchdogGrace;
    const watchdog = env.setTimeout(() => {
      if (!finish()) return;
      controller.abort();
      handlers.onError(new TimeoutError(limit, { transport: 'longpoll' }));
    }, limit);

    void (async () => {
      let response: Response;
      let text: string;
      try {
        const headers = await context.headers();
        response = await context.http.post(context.url, {
          json: request,
          headers,
          signal: controller.signal,
        });
        text = await response.text();
      } catch (cause) {
        if (finish()) handlers.onError(networkError(cause));
        return;
      }
      if (!finish()) return;
      if (response.status !== 200) return handlers.onError(httpError(response, text, env.now()));
      const answer = parsePollAnswer(parseJson(text));
      if (answer instanceof ProtocolError) return handlers.onError(answer);
      // The client may close the handle from inside a handler.
      handlers.onOpen();
      if (!closed) handlers.onMessages(answer);
      if (!closed) handlers.onClose();
    })();

    return {
      close() {
        closed = true;
        if (finish()) controller.abort();
      },
    };
  },
});

/** `longpoll` for the fallback ladder: a plain request and answer, so it is the floor. */
export const longPollTransport: TransportDefinition = {
  name: 'longpoll',
  floor: true,
  create: createLongPollTransport,
};
