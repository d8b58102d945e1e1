/**
 * `send` frames on a WebSocket: each one parsed, bounded by `maxSendsInFlight`, performed once
 * per id while in flight (a repeat joins the first), and answered `ack` or `nack`.
 */
import type { EngineContext } from '../engine/context';
import { type Credentials, type FrameHeaders, parseFrameHeaders } from '../engine/credentials';
import { type Frame, parseSendFrame, requireSendId, type ValidSend } from '../engine/request';
import { performSend, type SendOutcome } from '../engine/send';
import { isBrokerUnavailable, isCometServerError } from '../errors';
import { errorOf, retryAfterOf, type SocketOutput } from './websocket-output';

/** What the send frames of one socket need from it. */
export interface SendFramesHost {
  output: SocketOutput;
  /** True once the socket is shutting down: new sends are refused. */
  shuttingDown(): boolean;
  /** The session and user of the socket's last poll. */
  session(): { sessionGuid: string | undefined; userId: string | undefined };
  /** Takes a frame's headers as the socket's credentials from then on. */
  setHeaders(headers: FrameHeaders | undefined): void;
  /** The socket's credentials once the latest headers are checked. */
  credentials(): Promise<Credentials>;
  /** Counts a bad frame; false when it closed the socket. */
  bad(): boolean;
  /** A good frame: the bad-frame streak starts again. */
  good(): void;
  /** Answers a frame that could not be parsed with an `error` frame. */
  badFrame(message: string): void;
}

/** The send frames of one socket. */
export interface SendFrames {
  /** Takes a `send` frame. */
  start(frame: Frame): void;
  /** The sends being answered right now (a shutdown waits for them). */
  readonly inFlight: Set<Promise<void>>;
}

/** Creates the send-frame handling of one socket. */
export function createSendFrames(context: EngineContext, host: SendFramesHost): SendFrames {
  const options = context.options;
  const log = options.log;
  const { send, reply } = host.output;
  const sends = new Set<Promise<void>>();
  /** The sends in flight on this socket by id: a repeat joins the first, not the broker. */
  const sendIds = new Map<string, Promise<SendOutcome>>();

  const startSend = (frame: Frame) => {
    let id: string;
    try {
      id = requireSendId(frame.id);
    } catch (error) {
      // Without a usable id there is nothing a nack could name.
      return host.badFrame(errorOf(error).message);
    }
    const nack = (code: string, message: string, extra: { retryAfter?: number } = {}) =>
      send({ type: 'nack', id, error: { code, message }, ...extra });
    /** A nack answered at once (nothing waits for it): queued only while the client reads. */
    const nackNow = (code: string, message: string, extra: { retryAfter?: number } = {}) =>
      reply({ type: 'nack', id, error: { code, message }, ...extra });
    if (host.shuttingDown()) {
      return nackNow('unavailable', 'the server is shutting down; retry', {
        retryAfter: options.retryAfter,
      });
    }
    let parsed: ValidSend;
    try {
      parsed = parseSendFrame(frame, host.session());
      host.setHeaders(parseFrameHeaders(frame.headers));
    } catch (error) {
      if (!host.bad()) return;
      const { code, message } = errorOf(error);
      return nackNow(code, message);
    }
    host.good();
    if (sends.size >= options.maxSendsInFlight) {
      context.observer?.limited('sends');
      return nackNow(
        'rate_limited',
        `at most ${options.maxSendsInFlight} sends in flight per socket; wait for their answers`,
        { retryAfter: options.retryAfter },
      );
    }
    // The same send again while the first is in flight: the first one's outcome answers it.
    const joined = sendIds.get(id);
    const outcome =
      joined ??
      host
        .credentials()
        .then((given) =>
          performSend(
            context,
            { ...given, sessionGuid: parsed.sessionGuid, userId: parsed.userId },
            parsed,
          ),
        );
    if (!joined) sendIds.set(id, outcome);
    const task = outcome
      .then(
        (done) => send({ type: 'ack', id, messageId: done.messageId }),
        (error: unknown) => {
          if (!isCometServerError(error) && !isBrokerUnavailable(error)) {
            log({
              level: 'error',
              event: 'websocket.send_failed',
              message: 'unexpected error while handling a send frame',
              error,
            });
          }
          const { code, message } = errorOf(error);
          return nack(code, message, retryAfterOf(error, options.retryAfter));
        },
      )
      .finally(() => {
        sends.delete(task);
        if (sendIds.get(id) === outcome) sendIds.delete(id);
      });
    sends.add(task);
  };

  return { start: startSend, inFlight: sends };
}
