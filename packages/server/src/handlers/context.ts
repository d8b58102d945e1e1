import type { IncomingMessage, ServerResponse } from 'node:http';
import type { HoldTimer } from '../hold-timer';
import type { ServerObserver } from '../observer';
import type { Abortable, PollContext, WakeBatcher } from '../poll';
import type { RateLimiter } from '../rate-limit';

/** What every transport handler gets from the server. */
export interface HandlerContext extends PollContext {
  /** Aborts every held request with `reason` (`'drain'` answers them with `reconnect`). */
  readonly held: Set<Abortable>;
  /** The deadlines of held long-polls: one timer for all of them. */
  readonly holds: HoldTimer;
  readonly wakes: WakeBatcher;
  /** Publishes through the broker after checking the topic (the `publish` given to `onSend`). */
  publish(topic: string, data: unknown): Promise<string>;
  /**
   * Counts `task` as in flight until it settles (`close()` waits for it): the work a held
   * long-poll does after a wake-up, outside the request's own promise.
   */
  track(task: Promise<void>): void;
  /** Answers `thrown` as the error answer it maps to (and logs it), as a failed request is. */
  fail(req: IncomingMessage, res: ServerResponse, thrown: unknown): void;
  /** Receives what metrics count; undefined without `metrics`. */
  readonly observer: ServerObserver | undefined;
  /** The rate limits; undefined without `rateLimit`. */
  readonly limits: RateLimiter | undefined;
}
