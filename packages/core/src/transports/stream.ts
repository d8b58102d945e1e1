/**
 * Streaming: `POST {base}/_stream`, answered as Server-Sent Events over `fetch`. One `open`
 * event, then `messages` events until the server ends the stream (its time cap); the client
 * then opens a new one with its cursors.
 */
import { createParser } from 'eventsource-parser';
import { ProtocolError } from '../errors';
import { answerOf, httpError, networkError } from '../http';
import { parseJson } from '../parse';
import { DEFAULT_TIMINGS, STREAM_PATH } from '../protocol';
import { watchdog as arm, receive } from './shared';
import type { TransportDefinition, TransportFactory } from './types';

/**
 * How long a stream may be silent before it is dead: two heartbeats (one may be late) plus the
 * grace. The heartbeat is the server's announced one, else the reference server's default.
 */
const silenceLimit = (heartbeat: number, grace: number) => 2 * heartbeat + grace;

/** The streaming transport (`stream`): server push through paths that refuse WebSocket. */
export const createStreamTransport: TransportFactory = (context) => ({
  name: 'stream',
  open(request, handlers) {
    const env = context.environment;
    const controller = new AbortController();
    let limit = silenceLimit(DEFAULT_TIMINGS.heartbeat, context.watchdogGrace);
    let done = false;
    let opened = false;
    let watchdog: unknown;
    let reader: ReadableStreamDefaultReader<string> | undefined;
    const end = (report?: () => void) => {
      if (done) return;
      done = true;
      env.clearTimeout(watchdog);
      controller.abort();
      // The abort alone may not reach the fetch: ky's Request follows our signal only through a
      // weak reference, gone once the Request is collected (nodejs/node#55428). Cancelling the
      // body ends the connection whatever happened to it.
      reader?.cancel().catch(() => {});
      report?.();
    };
    // A stream that goes silent (half-open TCP, a proxy eating the heartbeat) is dead.
    const alive = () => {
      env.clearTimeout(watchdog);
      watchdog = arm(env, limit, 'stream', (error) => end(() => handlers.onError(error)));
    };
    alive();

    void (async () => {
      try {
        const response = await context.http.post(`${context.url}/${STREAM_PATH}`, {
          json: request,
          headers: await context.headers(),
          signal: controller.signal,
        });
        if (response.status !== 200 || !response.body) {
          const answer = answerOf(response, await response.text());
          return end(() => handlers.onError(httpError(answer, env.now())));
        }
        const parser = createParser({
          onEvent(event) {
            if (done) return;
            const answer = receive(event.event, parseJson(event.data), handlers, () => !done);
            if (answer instanceof ProtocolError) return end(() => handlers.onError(answer));
            if (event.event !== 'open' || opened) return;
            opened = true;
            const { heartbeat } = answer?.timings ?? {};
            if (heartbeat === undefined) return;
            limit = silenceLimit(heartbeat, context.watchdogGrace);
            if (!done) alive();
          },
        });
        reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
        for (;;) {
          const chunk = await reader.read();
          if (done) return;
          if (chunk.done) break;
          alive();
          parser.feed(chunk.value);
        }
        end(() =>
          opened
            ? handlers.onClose()
            : handlers.onError(new ProtocolError('the stream ended before its open event')),
        );
      } catch (cause) {
        end(() => handlers.onError(networkError(cause)));
      }
    })();

    return { close: () => end() };
  },
});

/** `stream` for the fallback ladder: runs wherever `fetch` streams; not a floor. */
export const streamTransport: TransportDefinition = {
  name: 'stream',
  floor: false,
  create: createStreamTransport,
};
