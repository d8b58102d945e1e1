/**
 * What the transports share: the watchdog timer (which knows when it fired late), and reading an
 * `open` or `messages` payload (streaming and WebSocket).
 */
import type { CometEnvironment } from '../environment';
import { ProtocolError, TimeoutError } from '../errors';
import { type ParsedAnswer, parsePollAnswer } from '../parse';
import type { TransportName } from '../protocol';
import type { TransportHandlers } from './types';

/**
 * Hands an `open` or `messages` payload (an SSE event's data or a WebSocket frame) to the
 * handlers: `open` first reports the transport open, then its cursors/resets/errors like any
 * answer. Other types are ignored.
 * @returns the checked answer (its `timings` tune the transport's watchdog), a `ProtocolError`
 * when the payload is not of the protocol's shape, or undefined for another type.
 */
export function receive(
  type: unknown,
  body: unknown,
  handlers: TransportHandlers,
  live: () => boolean,
): ParsedAnswer | ProtocolError | undefined {
  if (type !== 'open' && type !== 'messages') return;
  const answer = parsePollAnswer(body);
  if (answer instanceof ProtocolError) return answer;
  if (type === 'open') handlers.onOpen();
  // The client may close the handle from inside `onOpen` (a probe replaced, a topic change).
  if (live()) handlers.onMessages(answer);
  return answer;
}

/**
 * Arms a watchdog of `ms`: `fire` gets its `TimeoutError`, with how much later than due the timer
 * itself fired on the monotonic clock (`lateMs`): in a hidden tab or a frozen page that is the
 * page's fault, not the transport's.
 */
export function watchdog(
  env: CometEnvironment,
  ms: number,
  transport: TransportName,
  fire: (error: TimeoutError) => void,
): unknown {
  const due = env.monotonic() + ms;
  return env.setTimeout(
    () => fire(new TimeoutError(ms, { transport }, undefined, env.monotonic() - due)),
    ms,
  );
}
