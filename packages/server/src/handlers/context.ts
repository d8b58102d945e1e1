import type { Abortable, PollContext } from '../poll';

/** What every transport handler gets from the server. */
export interface HandlerContext extends PollContext {
  /** Aborts every held request with `reason` (`'drain'` answers them with `reconnect`). */
  readonly held: Set<Abortable>;
  /** Publishes through the broker after checking the topic (the `publish` given to `onSend`). */
  publish(topic: string, data: unknown): Promise<string>;
}
