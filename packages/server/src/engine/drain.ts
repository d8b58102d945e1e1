/**
 * Close-and-drain: what `close()` does between marking the server draining and releasing its
 * resources. Held requests are woken, then in-flight requests and sockets get until the timeout
 * to finish before whatever is left is cut off.
 */
import type { ServerResponse } from 'node:http';
import type { ResolvedServerOptions } from '../options';
import type { Abortable } from './context';

/** What a drain waits for and, past its timeout, cuts off. */
export interface DrainTargets {
  log: ResolvedServerOptions['log'];
  /** Every held request (counted in the `server.draining` log line). */
  held: Set<Abortable>;
  /** Aborts the drain signal and wakes every held request. */
  wake(): void;
  /** The WebSockets: closed once their pending sends are answered, or terminated. */
  sockets: { close(): Promise<void>; size(): number; terminate(): void };
  /** Requests being handled. */
  inFlight: Set<Promise<void>>;
  /** Responses not finished yet. */
  open: Set<ServerResponse>;
}

/** Drains `targets`, cutting off what is still busy after `timeout` ms. */
export async function drain(targets: DrainTargets, timeout: number): Promise<void> {
  const { log, held, sockets, inFlight, open } = targets;
  log({
    level: 'info',
    event: 'server.draining',
    message: 'draining',
    held: held.size,
  });
  targets.wake();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = await Promise.race([
    Promise.allSettled([sockets.close(), ...inFlight]).then(() => false),
    new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(true), timeout);
    }),
  ]);
  clearTimeout(timer);
  if (late) {
    log({
      level: 'warn',
      event: 'server.drain_timeout',
      message: `still busy after ${timeout} ms: cut off`,
      requests: open.size,
      sockets: sockets.size(),
    });
    sockets.terminate();
    for (const res of [...open]) res.destroy();
  }
}
