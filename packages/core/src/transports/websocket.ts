/**
 * WebSocket: `GET {base}/_ws`, upgraded. A `poll` frame sets the topic set (again on every
 * change), the server answers `open` then `messages`; sends go as `send` frames answered by
 * `ack`/`nack`; the client pings to find a silent connection. A browser cannot put headers on
 * the upgrade, so the credentials (`headers()`) travel in the frames: on every `poll`, and on a
 * `send` when they changed since the last frame that carried them (a refreshed token goes out
 * on the open socket).
 */
import { NetworkError, ProtocolError } from '../errors';
import { parseErrorBody, parseJson } from '../parse';
import { type ClientFrame, WEBSOCKET_PATH } from '../protocol';
import { receive, watchdog } from './shared';
import type { TransportDefinition, TransportFactory } from './types';

/**
 * How often the client pings at most, and how long it waits for the pong, in ms (the
 * protocol's). A server that announces its `idleTimeout` is pinged every third of it when that
 * is sooner, so a silent socket is never closed by the server first.
 */
const PING_MS = 20_000;
const PONG_MS = 10_000;
/**
 * Close codes after which the server expects a reconnect: normal, going away, restart, and
 * revoked (`4001`: the server's check decides again on the new connection).
 */
const CLEAN = [1000, 1001, 1012, 4001];

/** The WebSocket transport (`websocket`). Needs `environment.WebSocket` (Node 20 has none). */
export const createWebSocketTransport: TransportFactory = (context) => ({
  name: 'websocket',
  open(request, handlers) {
    const env = context.environment;
    const Socket = env.WebSocket() as typeof WebSocket;
    let poll = request;
    let done = false;
    let opened = false;
    let pingEvery = PING_MS;
    let pingTimer: unknown;
    let pongTimer: unknown;
    const ws = new Socket(`${context.url.replace(/^http/, 'ws')}/${WEBSOCKET_PATH}`);
    const write = (frame: ClientFrame) => {
      if (!done && ws.readyState === 1) ws.send(JSON.stringify(frame));
    };
    // Frames wait for the headers in order, so a send never overtakes the poll before it.
    let outbox: Promise<unknown> = Promise.resolve();
    let sentHeaders: string | undefined;
    const withHeaders = (frame: ClientFrame, always: boolean) => {
      outbox = outbox
        .then(() => context.headers())
        .then(
          (headers) => {
            const text = JSON.stringify(headers);
            if (Object.keys(headers).length > 0 && (always || text !== sentHeaders)) {
              sentHeaders = text;
              write({ ...frame, headers } as ClientFrame);
            } else write(frame);
          },
          // A throwing `headers()` is the application's: the frame goes without them.
          () => write(frame),
        );
    };
    const sendPoll = () => {
      const { wait: _wait, ...rest } = poll;
      withHeaders({ type: 'poll', ...rest }, true);
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
        pongTimer = watchdog(env, PONG_MS, 'websocket', (error) =>
          end(() => handlers.onError(error)),
        );
      }, pingEvery);
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
        pongTimer = undefined;
        return ping();
      }
      if ((type === 'ack' || type === 'nack') && typeof frame?.id === 'string')
        return handlers.onReply?.(
          frame.id,
          typeof frame.messageId === 'string' ? frame.messageId : undefined,
          parseErrorBody(frame),
        );
      const answer =
        type === 'error'
          ? new ProtocolError(`the server refused a frame: ${parseErrorBody(frame)?.message}`)
          : receive(type, frame, handlers, () => !done);
      if (answer instanceof ProtocolError) return end(() => handlers.onError(answer));
      if (type !== 'open' || opened) return;
      opened = true;
      const { idleTimeout } = answer?.timings ?? {};
      if (idleTimeout === undefined || idleTimeout / 3 >= pingEvery || done) return;
      // Re-armed at once so the first ping already comes within the server's idle timeout.
      pingEvery = Math.floor(idleTimeout / 3);
      if (pongTimer === undefined) {
        env.clearTimeout(pingTimer);
        ping();
      }
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
      send: (frame) => (frame.type === 'send' ? withHeaders(frame, false) : write(frame)),
      update(next) {
        poll = next;
        sendPoll();
      },
      close: () => end(),
    };
  },
});

/** `websocket` for the fallback ladder: needs a WebSocket constructor; not a floor. */
export const webSocketTransport: TransportDefinition = {
  name: 'websocket',
  floor: false,
  unsupported: (environment) =>
    environment.WebSocket()
      ? undefined
      : 'no WebSocket constructor here (pass environment.WebSocket)',
  openFailure: (error) =>
    `WebSocket closed before open: a proxy that refuses upgrades? (${error.message})`,
  create: createWebSocketTransport,
};
