/**
 * The connection: the attempt lifecycle. Opens the ladder's transport (or a probe of a better
 * one), feeds answers to the topic registry, and after a failure asks `policy.ts` what to do:
 * poll again, retry after a backoff, refresh credentials, or fail. Every state change goes
 * through the pure `reduce`; timers and I/O run here, after it. Every attempt is an object,
 * and a callback from an attempt that is no longer current or the probe is ignored. The page's
 * lifecycle: a suspended page (frozen, hidden for navigation) ends its requests, a resumed one
 * connects again at once, and a watchdog that fired late checks the connection instead of
 * failing it. Durations are on the environment's monotonic clock.
 */
import type { ClientContext } from './context';
import {
  CometError,
  type HttpError,
  isHttpError,
  isNetworkError,
  isTimeoutError,
  type TimeoutError,
} from './errors';
import {
  classifyFailure,
  type Hold,
  type HoldEnd,
  isLate,
  MIN_WAIT,
  nextFastStreak,
  nextHold,
  repollDelay,
  retryDelay,
} from './policy';
import type { SendHooks } from './send-queue';
import { IDLE, nextAttempt, reduce, type StateEvent } from './state';
import type { TopicRegistry } from './topic-registry';
import { createLadder, type Rung } from './transports/ladder';
import { watchdog } from './transports/shared';
import type { TransportHandle } from './transports/types';
import type { ConnectionState } from './types';

/** The connection of one client. */
export interface Connection {
  getState(): ConnectionState;
  /** The open transport, when it can carry sends (a WebSocket). */
  sender(): TransportHandle | undefined;
  /** Starts following the runtime's online state and the page's lifecycle (a send needs it too). */
  watchOnline(): void;
  /** Applies the registry's new topic set: starts, updates, or stops after `idleGrace`. */
  topicsChanged(): void;
  /** Drops the current attempt and connects again now. */
  reconnect(reason?: string): void;
  /**
   * A topic was refused for its credentials (the registry keeps it): asks the `auth` hook once
   * for every topic refused meanwhile, holds new polls until it answered, then polls the topics
   * again from their cursors (a WebSocket sends a new `poll` frame on the same socket).
   */
  authRefused(error: HttpError, topic: string): void;
  /** Stops for good (the client is closing). */
  close(): void;
}

/** One opened transport: the current one, or a probe for an upgrade. */
interface Attempt {
  rung: Rung;
  index: number;
  handle?: TransportHandle;
  topics: string[];
  opened: boolean;
  delivered: boolean;
  /** When the request went out (monotonic). */
  started: number;
  /** When it opened (until then, when it started; monotonic). */
  openedAt: number;
  openTimer?: unknown;
}

/** Makes the connection; nothing runs until the registry reports topics. */
export function createConnection(
  context: ClientContext,
  registry: TopicRegistry,
  sends: SendHooks,
): Connection {
  const { options, environment: env, events } = context;
  const ladder = createLadder(context);
  let state: ConnectionState = IDLE;
  let hold: Hold = { wait: options.wait, cuts: 0, held: 0 };
  let recalled = false;
  let suspended = false;
  let stopLifecycle: (() => void) | undefined;
  let generation = 0;
  let current: Attempt | undefined;
  let probe: Attempt | undefined;
  let probeTimer: unknown;
  let retryTimer: unknown;
  let idleTimer: unknown;
  let fastStreak = 0;
  // One auth refresh per failure streak: reset when a transport opens or on `reconnect()`.
  let authTried = false;
  let authPending = false;
  // A refresh for topics refused in an answer: polls wait for it (`resumeAfterAuth`).
  let topicAuth = false;
  let resumeAfterAuth = false;
  let stopOnline: (() => void) | undefined;

  function dispatch(event: StateEvent) {
    const previous = state;
    state = reduce(state, event);
    if (state === previous) return;
    events.emit('state', state, previous);
    sends.wake();
  }

  function watchOnline() {
    stopLifecycle ??= env.lifecycle.subscribe((event, cause) => {
      if (context.closed) return;
      if (event === 'suspend') {
        // Nothing held, nothing to release (idle, failed, offline, already suspended).
        if (!current && !probe && retryTimer === undefined) return;
        suspended = true;
        halt();
        events.diagnostic('page-suspended', cause, { cause });
        return;
      }
      // A retry timer of a hidden tab may be throttled to once a minute: retry now instead.
      if (!suspended && state.status !== 'reconnecting') return;
      suspended = false;
      events.diagnostic('page-resumed', cause, { cause });
      connect();
    });
    stopOnline ??= env.online.subscribe((online) => {
      if (context.closed) return;
      sends.wake();
      if (!online) {
        if (state.status === 'idle' || state.status === 'failed') return;
        halt();
        events.diagnostic('offline', 'offline: requests paused');
        dispatch({ type: 'offline' });
      } else if (state.status === 'offline') {
        events.diagnostic('online', 'online: polling');
        connect(true);
      }
    });
  }

  function drop(attempt: Attempt | undefined) {
    if (attempt && attempt === current) current = undefined;
    if (attempt?.handle) sends.dropped(attempt.handle);
  }
  function closeCurrent() {
    generation++;
    const attempt = current;
    env.clearTimeout(attempt?.openTimer);
    attempt?.handle?.close();
    drop(attempt);
  }
  function closeProbe() {
    env.clearTimeout(probeTimer);
    probeTimer = undefined;
    const attempt = probe;
    probe = undefined;
    env.clearTimeout(attempt?.openTimer);
    attempt?.handle?.close();
  }
  function clearRetry() {
    env.clearTimeout(retryTimer);
    retryTimer = undefined;
  }
  /** Stops every request and timer of the poll loop. */
  function halt() {
    closeCurrent();
    closeProbe();
    clearRetry();
  }

  function connect(restart = false) {
    clearRetry();
    if (topicAuth) {
      // The next poll would carry the credentials just refused: it goes once the hook answered.
      resumeAfterAuth = true;
      return;
    }
    closeCurrent();
    if (context.closed || !registry.hasTopics()) return;
    watchOnline();
    if (!env.online.isOnline()) return dispatch({ type: 'offline' });
    if (context.baseUrl() === undefined) return fail(context.badUrl());
    const rung = ladder.at(ladder.level);
    if (!rung)
      return fail(new CometError(`no usable transport in ${options.transports.join(', ')}`));
    const remembered = ladder.wait;
    if (
      !recalled &&
      typeof remembered === 'number' &&
      remembered >= MIN_WAIT &&
      remembered < hold.wait
    )
      changeWait(remembered, 'remembered');
    recalled = true;
    dispatch({ type: 'connect', transport: rung.transport.name, restart });
    start(ladder.level, false);
  }

  /** Opens rung `index`, as the current attempt or as a probe for an upgrade. */
  function start(index: number, probing: boolean) {
    const rung = ladder.at(index);
    if (!rung) return;
    const { transport, floor } = rung;
    const request = registry.pollRequest(hold.wait);
    const now = env.monotonic();
    const attempt: Attempt = {
      rung,
      index,
      topics: request.topics,
      opened: false,
      delivered: false,
      started: now,
      openedAt: now,
    };
    const live = () => !context.closed && (attempt === current || attempt === probe);
    /** Falls back unless this is the current floor, which has nowhere to fall to. */
    const notOpen = (reason: string) => {
      if (floor && attempt === current) return false;
      cannotOpen(attempt, reason);
      return true;
    };
    if (probing) probe = attempt;
    else current = attempt;
    if (!floor)
      attempt.openTimer = watchdog(env, options.openTimeout, transport.name, (error) => {
        if (!live()) return;
        if (isLate(error)) return late(attempt, error);
        cannotOpen(attempt, `no open event in ${options.openTimeout / 1000} s: a buffering proxy?`);
      });
    attempt.handle = transport.open(request, {
      onOpen() {
        if (!live()) return;
        env.clearTimeout(attempt.openTimer);
        // A WebSocket answers every `poll` frame (a topic change) with another `open`.
        if (attempt.opened) return;
        attempt.opened = true;
        attempt.openedAt = env.monotonic();
        authTried = false;
        if (attempt === probe) {
          closeCurrent();
          probe = undefined;
          current = attempt;
          ladder.moveUp(index);
        }
        registry.answered(attempt.topics);
        ladder.remember(transport.name, hold.wait);
        dispatch({ type: 'open', transport: transport.name });
        scheduleProbe();
      },
      onMessages(answer) {
        if (!live() || attempt !== current) return;
        // Only a message handed to a callback counts: repeats would defeat the fast re-poll guard.
        if (registry.deliver(answer)) attempt.delivered = true;
        sends.wake();
      },
      onError(error) {
        if (!live()) return;
        if (isLate(error)) return late(attempt, error as TimeoutError);
        const auth = isHttpError(error) && (error.status === 401 || error.status === 403);
        if (!attempt.opened && !auth && notOpen(rung.openFailure(error))) return;
        if (attempt === probe) return cannotOpen(attempt, error.message);
        drop(attempt);
        if (!demoted(attempt, error)) failure(attempt, error, env.monotonic() - attempt.started);
      },
      onClose() {
        if (!live()) return;
        if (!attempt.opened && notOpen(`${transport.name} ended before open`)) return;
        drop(attempt);
        if (demoted(attempt)) return;
        const held = env.monotonic() - attempt.started;
        if (!attempt.delivered) learn(attempt, { end: 'held', heldMs: held });
        fastStreak = nextFastStreak(fastStreak, held, attempt.delivered);
        repoll(held);
      },
      onReply(id, messageId, error) {
        if (attempt.handle) sends.reply(attempt.handle, id, messageId, error);
      },
    });
  }

  /** A transport could not open: the current one falls back, a probe tries the next or waits. */
  function cannotOpen(attempt: Attempt, reason: string) {
    if (attempt === probe) {
      closeProbe();
      ladder.probeFailed(attempt.index, reason);
      if (attempt.index + 1 < ladder.level) start(attempt.index + 1, true);
      else scheduleProbe();
      return;
    }
    ladder.fallBack(attempt.index, reason);
    connect();
  }

  /**
   * A watchdog of `attempt` fired late (a hidden tab's throttled timers, a frozen page, a
   * sleeping machine): that says nothing about the transport, so no fallback and no demotion.
   * It is opened again at once, with the cursors; a probe waits for its next turn.
   */
  function late(attempt: Attempt, { lateMs }: TimeoutError) {
    events.diagnostic('timer-late', `${lateMs | 0} ms late: reconnecting`, {
      lateMs,
      transport: attempt.rung.transport.name,
    });
    if (attempt !== probe) return connect();
    closeProbe();
    scheduleProbe();
  }

  /** After an opened transport ended: true when the ladder demoted it (and the session moved on). */
  function demoted(attempt: Attempt, error?: CometError): boolean {
    if (!attempt.opened || attempt.rung.floor) return false;
    if (!ladder.demoted(attempt.index, attempt.openedAt, error)) return false;
    connect();
    return true;
  }

  /** While below the best transport, tries the better ones again now and then. */
  function scheduleProbe() {
    const interval = options.upgradeInterval;
    if (probeTimer !== undefined || probe || ladder.level === 0 || !interval || context.closed)
      return;
    const delay = Math.round(interval * (0.75 + env.random() / 2));
    probeTimer = env.setTimeout(() => {
      probeTimer = undefined;
      if (state.status === 'connected') start(0, true);
    }, delay);
  }

  /**
   * Polls again after a poll ended: at once, or with `environment.repollAfterTurn` (the Node
   * entry) on a 0 ms timer, so that every answer that came in the same turn reaches its
   * callbacks before any client of the process spends time on its next request (not in a page:
   * a hidden tab's timers are throttled to one a second); after a backoff on fast empty answers.
   */
  function repoll(held: number) {
    const delay = repollDelay(fastStreak, options.backoff, env.random);
    if (delay === undefined) {
      if (env.repollAfterTurn) retryTimer = env.setTimeout(connect, 0);
      else connect();
      return;
    }
    events.diagnostic('fast-repoll-backoff', `fast empty answers: poll in ${delay} ms`, {
      heldMs: held,
      delayMs: delay,
      streak: fastStreak,
    });
    retryTimer = env.setTimeout(() => connect(), delay);
  }

  /** Sets `wait` and says why (`wait-lowered`, `wait-raised`). */
  function changeWait(wait: number, reason: string, detail?: object) {
    events.diagnostic(
      wait < hold.wait ? 'wait-lowered' : 'wait-raised',
      `${reason}: wait ${wait} ms`,
      {
        ...detail,
        reason,
        wait,
        previousWait: hold.wait,
      },
    );
    hold = { ...hold, wait };
  }

  /** Feeds how a long-poll ended to the adaptive hold (`policy.nextHold`). */
  function learn(attempt: Attempt, end: HoldEnd) {
    if (!attempt.rung.definition.floor) return;
    const [next, reason] = nextHold(hold, end, options.wait);
    if (reason) changeWait(next.wait, reason, end);
    hold = next;
    if (reason) ladder.remember(attempt.rung.transport.name, hold.wait);
  }

  function failure(attempt: Attempt, error: CometError, held: number) {
    const action = classifyFailure('poll', error, options.auth !== undefined && !authTried);
    // Only an `HttpError` is classified `repoll` or `auth`.
    if (action === 'repoll' && isHttpError(error)) return proxyTimeout(attempt, error, held);
    if (action === 'auth' && isHttpError(error)) return refreshAuth(error);
    if (action === 'fatal') return fail(error);
    if (isNetworkError(error)) learn(attempt, { end: 'cut', heldMs: held });
    if (isTimeoutError(error))
      events.diagnostic('watchdog-timeout', `no answer in ${error.waitedMs} ms: poll aborted`, {
        waitedMs: error.waitedMs,
      });
    retry(error);
  }

  /** A proxy cut a held poll: learn what the path allows, and poll again. */
  function proxyTimeout(attempt: Attempt, { status }: HttpError, held: number) {
    learn(attempt, { end: 'cut', heldMs: held, status });
    fastStreak = nextFastStreak(fastStreak, held);
    events.diagnostic('proxy-timeout', `${status} after ${held} ms: polling again`, {
      status,
      heldMs: held,
    });
    repoll(held);
  }

  function retry(error: CometError) {
    const attempt = nextAttempt(state);
    const delay = retryDelay(error, attempt, options.backoff, env.random);
    const retryAfter = isHttpError(error) && error.retryAfterMs !== undefined;
    dispatch({ type: 'retry', error, retryInMs: delay });
    events.emit('error', error);
    events.diagnostic(
      retryAfter ? 'retry-after' : 'retry-scheduled',
      `${error.message}: retry ${attempt} in ${delay} ms`,
      {
        attempt,
        delayMs: delay,
        error: error.name,
        status: isHttpError(error) ? error.status : undefined,
      },
    );
    retryTimer = env.setTimeout(() => connect(), delay);
  }

  function fail(error: CometError) {
    halt();
    dispatch({ type: 'fail', error });
    events.emit('error', error);
    events.diagnostic('failed', `failed: ${error.message}`, {
      error: error.name,
      status: isHttpError(error) ? error.status : undefined,
    });
  }

  function refreshAuth(error: HttpError) {
    authTried = true;
    authPending = true;
    events.diagnostic('auth-refresh', `${error.status}: asking auth`, { status: error.status });
    const startedIn = generation;
    const stale = () => context.closed || startedIn !== generation;
    Promise.resolve()
      .then(() => context.refreshAuth(error))
      .then(
        (fresh) => {
          authPending = false;
          if (stale()) return;
          if (fresh) connect();
          else fail(error);
        },
        (cause) => {
          authPending = false;
          if (!stale()) fail(new CometError('auth hook threw', { cause }));
        },
      );
  }

  function authRefused(error: HttpError, topic: string) {
    topicAuth = true;
    Promise.resolve()
      .then(() => context.refreshAuth(error, topic))
      .catch(() => false)
      .then((fresh) => {
        topicAuth = false;
        const resume = resumeAfterAuth;
        resumeAfterAuth = false;
        if (context.closed) return;
        // Without fresh headers the registry drops the topics, and its flush applies the set.
        registry.authRefreshed(fresh);
        if (!fresh) {
          if (resume) queueMicrotask(() => current || !registry.hasTopics() || connect());
          return;
        }
        const open = current?.opened ? current : undefined;
        if (!resume && open?.handle?.update && registry.hasTopics()) {
          events.diagnostic('auth-refreshed', 'fresh credentials: poll sent again', {});
          open.topics = registry.topics();
          return open.handle.update(registry.pollRequest(hold.wait));
        }
        events.diagnostic('auth-refreshed', 'fresh credentials: polling again', {});
        if (registry.hasTopics()) connect();
      });
  }

  function stop() {
    idleTimer = undefined;
    if (registry.hasTopics() || context.closed) return;
    halt();
    fastStreak = 0;
    events.diagnostic('idle-stop', 'no topics: stopped');
    dispatch({ type: 'stop' });
  }

  return {
    getState: () => state,
    authRefused,
    sender: () => (current?.opened && current.handle?.send ? current.handle : undefined),
    watchOnline,

    topicsChanged() {
      sends.wake();
      if (!registry.hasTopics()) {
        if (state.status !== 'idle' && idleTimer === undefined)
          idleTimer = env.setTimeout(stop, options.idleGrace);
        return;
      }
      env.clearTimeout(idleTimer);
      idleTimer = undefined;
      if (state.status === 'idle') return connect();
      if (state.status === 'failed' || state.status === 'offline') return;
      if (current) {
        if (registry.isCurrent(current.topics)) return;
        const topics = registry.topics();
        events.diagnostic('topics-changed', 'topics changed: poll sent again', { topics });
        // The probe's request names the old topics.
        closeProbe();
        scheduleProbe();
        if (!current.handle?.update) return connect();
        current.topics = topics;
        return current.handle.update(registry.pollRequest(hold.wait));
      }
      if (retryTimer === undefined && !authPending) connect();
    },

    reconnect(reason) {
      events.diagnostic('reconnect-requested', `reconnect: ${reason}`, { reason });
      authTried = false;
      fastStreak = 0;
      sends.wake();
      if (registry.hasTopics()) connect(true);
    },

    close() {
      halt();
      env.clearTimeout(idleTimer);
      context.closed = true;
      stopOnline?.();
      stopLifecycle?.();
      dispatch({ type: 'close' });
    },
  };
}
