/**
 * WebSocket: `GET {base}/_ws`, upgraded. A `poll` frame sets the topic set (again on every
 * change), the server answers `open` then `messages`; sends go as `send` frames answered by
 * `ack`/`nack`; the client pings to find a silent connection.
 */
import { NetworkError, ProtocolError, TimeoutError } from '../errors';
import { parseErrorBody, parseJson } from '../parse';
import { type ClientFrame, WEBSOCKET_PATH } from '../protocol';
import { receive } from './shared';
import type { TransportFactory } from './types';

/** How often the client pings, and how long it waits for the pong, in ms (the protocol's). */
const PING_MS = 20_000;
const PONG_MS = 10_000;
/** Close codes after which the server expects a reconnect: normal, going away, restart. */
const CLEAN = [1000, 1001, 1012];

/** The WebSocket transport (`websocket`). Needs `environment.WebSocket` (Node 20 has none). */
export const createWebSocketTransport: TransportFactory = (context) => ({
  name: 'websocket',
  open(request, handlers) {
    const env = context.environment;
    const Socket = env.WebSocket() as typeof WebSocket;
    let poll = request;
    let done = false;
    let opened = false;
    let pingTimer: unknown;
    let pongTimer: unknown;
    const ws = new Socket(`${context.url.replace(/^http/, 'ws')}/${WEBSOCKET_PATH}`);
    const write = (frame: ClientFrame) => {
      if (!done && ws.readyState === 1) ws.send(JSON.stringify(frame));
    };
    const sendPoll = () => {
      const { wait: _wait, ...rest } = poll;
      write({ type: 'poll', ...rest });
    };
    const end = (report?: () => void) => {
      if (done) return;
      done = true;
      env.clearTimeout(pingTimer);
      env.clearTimeout(pongTimer);
      ws.onopen = ws.onmessage = ws.onclose = null;
      ws.close(1000);
      report?.();
    };
    const ping = () => {
      pingTimer = env.setTimeout(() => {
        write({ type: 'ping' });
        pongTimer = env.setTimeout(
          () => end(() => handlers.onError(new TimeoutError(PONG_MS, { transport: 'websocket' }))),
          PONG_MS,
        );
      }, PING_MS);
    };
    // An error is always followed by a close; `ws` (Node) throws on an error nobody listens to.
    ws.onerror = () => {};
    ws.onopen = () => {
      sendPoll();
      ping();
    };
    ws.onmessage = (event: MessageEvent) => {
      const frame = parseJson(typeof event.data === 'string' ? event.data : '') as {
        type?: unknown;
        id?: unknown;
        messageId?: unknown;
      } | null;
      const type = frame?.type;
      if (type === 'pong') {
        env.clearTimeout(pongTimer);
        return ping();
      }
      if ((type === 'ack' || type === 'nack') && typeof frame?.id === 'string')
        return handlers.onReply?.(
          frame.id,
          typeof frame.messageId === 'string' ? frame.messageId : undefined,
          parseErrorBody(frame),
        );
      opened ||= type === 'open';
      const error =
        type === 'error'
          ? new ProtocolError(`the server refused a frame: ${parseErrorBody(frame)?.message}`)
          : receive(type, frame, handlers, () => !done);
      if (error) end(() => handlers.onError(error));
    };
    ws.onclose = (event: CloseEvent) =>
      end(() =>
        opened && CLEAN.includes(event.code)
          ? handlers.onClose()
          : handlers.onError(
              new NetworkError(
                `WebSocket closed${opened ? '' : ' before open'} (${event.code}${event.reason ? ` ${event.reason}` : ''})`,
                { transport: 'websocket' },
              ),
            ),
      );
    return {
      send: write,
      update(next) {
        poll = next;
        sendPoll();
      },
      close: () => end(),
    };
  },
});
