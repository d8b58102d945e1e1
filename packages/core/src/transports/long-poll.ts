/**
 * Long-polling: one POST per poll, held by the server until it has something or its hold ends.
 * One `open` is one poll; the client opens the next with its updated cursors.
 */
import { ProtocolError } from '../errors';
import { type HttpAnswer, httpError, networkError } from '../http';
import { parseJson, parsePollAnswer } from '../parse';
import { watchdog as arm } from './shared';
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
    const watchdog = arm(env, limit, 'longpoll', (error) => {
      if (!finish()) return;
      controller.abort();
      handlers.onError(error);
    });

    void (async () => {
      let answer: HttpAnswer;
      try {
        const headers = await context.headers();
        answer = await context.post(
          context.url,
          JSON.stringify(request),
          headers,
          controller.signal,
        );
      } catch (cause) {
        if (finish()) handlers.onError(networkError(cause));
        return;
      }
      if (!finish()) return;
      if (answer.status !== 200) return handlers.onError(httpError(answer, env.now()));
      const parsed = parsePollAnswer(parseJson(answer.text));
      if (parsed instanceof ProtocolError) return handlers.onError(parsed);
      // The client may close the handle from inside a handler.
      handlers.onOpen();
      if (!closed) handlers.onMessages(parsed);
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
