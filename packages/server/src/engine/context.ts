/**
 * What every part of the engine and every transport handler shares for one server: the broker,
 * the resolved options, the read cache, the wake batcher, the hold timer, the drain set and the
 * counters. Made once by `createCometServer`; the only state the server keeps.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Broker, BrokerPublishOptions } from '../broker';
import type { ServerObserver } from '../observer';
import type { ResolvedServerOptions } from '../options';
import type { RateLimiter } from '../rate-limit';
import type { ConnectionRegistry } from './connections';
import type { HoldTimer } from './hold-timer';
import type { PresenceKeeper } from './presence';
import type { ReadCache } from './read';
import type { SessionHolds } from './session-holds';
import type { WakeBatcher } from './wake';

/** Anything a drain can stop: an `AbortController` (stream, WebSocket) or a held long-poll. */
export interface Abortable {
  abort(reason?: unknown): void;
}

/** The server-wide state the engine and the handlers work with. */
export interface EngineContext {
  readonly broker: Broker;
  readonly options: ResolvedServerOptions;
  /** Shares reads between the held requests that one publish wakes. */
  readonly reads: ReadCache;
  /** Ends the coalescing windows of the requests one publish wakes in one callback. */
  readonly wakes: WakeBatcher;
  /** The deadlines of held long-polls: one timer for all of them. */
  readonly holds: HoldTimer;
  /** Every held request; a drain aborts them with `'drain'` (answered with `reconnect`). */
  readonly held: Set<Abortable>;
  /** Who is connected (held polls, streams, WebSockets), for `disconnect(filter)`. */
  readonly connections: ConnectionRegistry;
  /** `waiting`: how many requests wait for a publish right now (for stats). */
  readonly counters: { waiting: number };
  /** Publishes through the broker after checking the topic (the `publish` given to `onSend`). */
  publish(topic: string, data: unknown, options?: BrokerPublishOptions): Promise<string>;
  /**
   * Counts `task` as in flight until it settles (`close()` waits for it): the work a held
   * long-poll does after a wake-up, outside the request's own promise.
   */
  track(task: Promise<void>): void;
  /** Answers `thrown` as the error answer it maps to (and logs it), as a failed request is. */
  fail(req: IncomingMessage, res: ServerResponse, thrown: unknown): void;
  /** Receives what metrics count; undefined without `metrics`. */
  readonly observer: ServerObserver | undefined;
  /** Presence (`{topic}@presence` topics); undefined without `presence`. */
  readonly presence: PresenceKeeper | undefined;
  /** The rate limits; undefined without `rateLimit`. */
  readonly limits: RateLimiter | undefined;
  /** Polls held per session, at most `maxHeldPerSession`. */
  readonly sessions: SessionHolds;
  /** Aborts when the server drains: body reads still going on stop with `503`. */
  readonly drain: AbortSignal;
}
