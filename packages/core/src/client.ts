/**
 * The client: wires the options, the reducer, the topic registry, the transport and the send
 * queue. All state transitions go through `reduce`; timers and I/O happen here, after it.
 */
import EventEmitter from 'eventemitter3';
import ky from 'ky';
import { backoffDelay } from './backoff';
import {
  ClosedError,
  CometError,
  type HttpError,
  isHttpError,
  isTimeoutError,
  NetworkError,
  ProtocolError,
  QueueFullError,
  TopicError,
} from './errors';
import { httpError, networkError } from './http';
import { type CometClientOptions, type HeaderRecord, resolveOptions } from './options';
import { type ParsedAnswer, parseJson } from './parse';
import { classifyFailure, loweredWait, nackError, nextFastStreak, repollDelay } from './policy';
import { type PollRequest, type TopicErrorBody, topicProblem } from './protocol';
import { IDLE, nextAttempt, reduce, type StateEvent } from './state';
import { transportDefinitions } from './transports/select';
import type { Transport, TransportDefinition, TransportHandle } from './transports/types';
import type {
  CometClient,
  CometEvents,
  CometMessage,
  ConnectionState,
  Diagnostic,
  MessageHandler,
  TopicMap,
  TopicSnapshot,
  TopicStore,
  TransportName,
} from './types';

/** Delivered ids remembered per topic to drop repeats. */
const SEEN_LIMIT = 256;
/** A transport that ends sooner than this after opening died "early"... */
const EARLY_MS = 10_000;
/** ...and this many early deaths in a row demote it. */
const EARLY_LIMIT = 3;
/** One opened transport: the current one, or a probe for an upgrade. */
interface Attempt {
  t: Transport;
  index: number;
  handle?: TransportHandle;
  topics: string[];
  opened: boolean;
  delivered?: boolean;
  /** When the request went out. */
  started: number;
  /** When it opened (until then, when it started). */
  at: number;
  /** The open timeout. */
  timer?: unknown;
}

/** What storage keeps per base URL. */
interface Memory {
  name: TransportName;
  at: number;
}

/** The answer to a send frame; undefined when the socket went before it. */
type Reply = { messageId?: string; error?: TopicErrorBody } | undefined;

interface Subscription {
  callback: MessageHandler;
}

interface QueuedSend {
  topic: string;
  id: string;
  data: unknown;
  body: string;
  attempt: number;
  authTried: boolean;
  resolve: (messageId: string) => void;
  reject: (error: CometError) => void;
}

type Done = { type: 'done'; messageId: string };
/** A send that got no usable answer: retried (after `delay`, else backoff). */
type Lost = { type: 'lost'; error: CometError; delay?: number };

type SendOutcome =
  | { type: 'done'; messageId: string }
  | { type: 'fatal'; error: CometError }
  | { type: 'retry'; error: CometError; delay: number };

const topicError = (topic: unknown): TopicError | undefined => {
  const problem = topicProblem(topic);
  return problem === undefined ? undefined : new TopicError(String(topic), problem);
};

const checkCursor = (options?: { cursor?: string }) => {
  const cursor = options?.cursor;
  if (cursor !== undefined && typeof cursor !== 'string')
    throw new CometError('cursor must be a string');
  return cursor;
};

const list = <T>(value: T | readonly T[]): T[] =>
  Array.isArray(value) ? [...value] : [value as T];

/**
 * Creates a client. Nothing runs until the first `subscribe` or `send`.
 * @throws `CometError` for an invalid option.
 */
export function createCometClient<Topics extends TopicMap = TopicMap>(
  options?: CometClientOptions,
): CometClient<Topics> {
  const o = resolveOptions(options);
  const env = o.environment;
  const sessionGuid = env.randomUUID();
  // Untyped inside: `on` and `emit` below are the typed surface.
  const emitter = new EventEmitter();
  const http = ky.create({ fetch: env.fetch, retry: 0, timeout: false, throwHttpErrors: false });

  let state: ConnectionState = IDLE;
  let closed = false;
  let wait = o.wait;
  let generation = 0;
  let current: Attempt | undefined;
  let probe: Attempt | undefined;
  let probeTimer: unknown;
  let ladder: Transport[] | undefined;
  /** What each transport of the ladder declares: floor, open-failure explanation. */
  const kinds: TransportDefinition[] = [];
  let level = 0;
  let earlyDeaths = 0;
  let remembered: Memory | undefined;
  let wsSend: { a: Attempt; id: string; done: (reply: Reply) => void } | undefined;
  let retryTimer: unknown;
  let idleTimer: unknown;
  let flushQueued = false;
  let fastStreak = 0;
  let authTried = false;
  let authPending = false;
  let authHeaders: HeaderRecord = {};
  let stopOnline: (() => void) | undefined;

  const handlers = new Map<string, Set<Subscription>>();
  const cursors = new Map<string, string>();
  const seen = new Map<string, Set<string>>();
  const stores = new Map<string, TopicStore>();

  const headers = async (): Promise<HeaderRecord> => ({ ...(await o.headers()), ...authHeaders });

  // ---- events: a listener that throws never breaks the client or the other listeners ----
  function call<A extends unknown[]>(listener: (...args: A) => void, args: A, event?: string) {
    try {
      listener(...args);
    } catch (error) {
      const report = (globalThis as { reportError?: (e: unknown) => void }).reportError;
      if (report) report(error);
      if (event !== 'diagnostic')
        diagnostic('listener-error', 'a listener threw', {
          error,
        });
    }
  }
  function emit<E extends keyof CometEvents>(event: E, ...args: Parameters<CometEvents[E]>) {
    for (const listener of emitter.listeners(event))
      call(listener as (...a: Parameters<CometEvents[E]>) => void, args, event);
  }
  function diagnostic(code: string, message: string, detail?: Diagnostic['detail']) {
    emit('diagnostic', { code, message, detail });
  }

  function dispatch(event: StateEvent) {
    const previous = state;
    state = reduce(state, event);
    if (state === previous) return;
    emit('state', state, previous);
    wakeSends?.();
  }

  function resolveUrl(): string | undefined {
    try {
      return new URL(o.url, (globalThis as { location?: { href: string } }).location?.href).href;
    } catch {
      return undefined;
    }
  }
  const badUrl = () =>
    new CometError(
      `url ${JSON.stringify(o.url)} is not absolute and there is no page location to resolve it against (in Node, pass an absolute url)`,
    );

  function watchOnline() {
    stopOnline ??= env.online.subscribe((online) => {
      if (closed) return;
      wakeSends?.();
      if (!online) {
        if (state.status === 'idle' || state.status === 'failed') return;
        closeCurrent();
        closeProbe();
        clearRetry();
        diagnostic('offline', 'offline: requests paused');
        dispatch({ type: 'offline' });
      } else if (state.status === 'offline') {
        diagnostic('online', 'online: polling');
        connect(true);
      }
    });
  }

  // ---- transports: the usable ones in order, the level the session is on, memory ----
  function usable(): Transport[] {
    if (ladder) return ladder;
    ladder = [];
    const context = {
      url: resolveUrl() ?? '',
      http,
      environment: env,
      headers,
      watchdogGrace: o.watchdogGrace,
    };
    for (const name of o.transports) {
      const definition = transportDefinitions.get(name);
      const unsupported = definition
        ? definition.unsupported?.(env)
        : 'not a transport of this build';
      if (definition && !unsupported) {
        kinds.push(definition);
        ladder.push(definition.create(context));
      } else
        diagnostic('transport-skipped', `${name} skipped: ${unsupported}`, { transport: name });
    }
    level = recall(ladder);
    return ladder;
  }
  const memoryKey = () => `cometkit:transport:${resolveUrl()}`;
  // Storage may be missing, full or throwing (private modes, sandboxes): memory is a bonus.
  function recall(transports: Transport[]): number {
    try {
      const saved = parseJson(env.storage()?.getItem(memoryKey()) ?? '') as Memory | undefined;
      const index = transports.findIndex((t) => t.name === saved?.name);
      const age = env.now() - (saved?.at ?? 0);
      if (index > 0 && age < o.transportMemoryTtl) {
        diagnostic('transport-remembered', `starting on ${saved?.name}: it worked here before`, {
          transport: saved?.name,
          ageMs: age,
        });
        return index;
      }
    } catch {}
    return 0;
  }
  // Written again once half the TTL has passed, so a long session on a fallback is still
  // remembered when the page is reloaded after more than one TTL.
  function remember(name: TransportName) {
    const at = env.now();
    if (
      !o.transportMemoryTtl ||
      (remembered?.name === name && at - remembered.at < o.transportMemoryTtl / 2)
    )
      return;
    remembered = { name, at };
    try {
      env.storage()?.setItem(memoryKey(), JSON.stringify(remembered));
    } catch {}
  }

  // ---- the poll loop ----
  function drop(a: Attempt | undefined) {
    if (a && a === current) current = undefined;
    if (a && wsSend?.a === a) wsSend.done(undefined);
  }
  function closeCurrent() {
    generation++;
    const a = current;
    env.clearTimeout(a?.timer);
    a?.handle?.close();
    drop(a);
  }
  function closeProbe() {
    env.clearTimeout(probeTimer);
    probeTimer = undefined;
    const p = probe;
    probe = undefined;
    env.clearTimeout(p?.timer);
    p?.handle?.close();
  }
  function clearRetry() {
    env.clearTimeout(retryTimer);
    retryTimer = undefined;
  }

  function pollRequest(): PollRequest {
    const request: PollRequest = {
      v: 1,
      sessionGuid,
      userId: o.userId,
      topics: [...handlers.keys()],
      wait,
    };
    // Only topics in this request: an unsubscribe not yet flushed leaves its cursor behind.
    const positions = [...cursors].filter(([topic]) => handlers.has(topic));
    if (positions.length > 0) request.cursors = Object.fromEntries(positions);
    return request;
  }

  function connect(restart = false) {
    clearRetry();
    closeCurrent();
    if (closed || handlers.size === 0) return;
    watchOnline();
    if (!env.online.isOnline()) return dispatch({ type: 'offline' });
    if (resolveUrl() === undefined) return fail(badUrl());
    const t = usable()[level];
    if (!t) return fail(new CometError(`no usable transport in ${o.transports.join(', ')}`));
    dispatch({ type: 'connect', transport: t.name, restart });
    start(level, false);
  }

  /** Opens transport `index`, as the current attempt or as a probe for an upgrade. */
  function start(index: number, probing: boolean) {
    const t = (ladder as Transport[])[index] as Transport;
    const request = pollRequest();
    const now = env.now();
    const a: Attempt = { t, index, topics: request.topics, opened: false, started: now, at: now };
    const live = () => !closed && (a === current || a === probe);
    // A floor transport (or the last one named) has nowhere to fall to.
    const floor = kinds[index]?.floor || index === kinds.length - 1;
    const notOpen = (why: string) => {
      if (floor && a === current) return false;
      cannotOpen(a, why);
      return true;
    };
    if (probing) probe = a;
    else current = a;
    if (!floor)
      a.timer = env.setTimeout(() => {
        if (live()) cannotOpen(a, `no open event in ${o.openTimeout / 1000} s: a buffering proxy?`);
      }, o.openTimeout);
    a.handle = t.open(request, {
      onOpen() {
        if (!live()) return;
        env.clearTimeout(a.timer);
        // A WebSocket answers every `poll` frame (a topic change) with another `open`.
        if (a.opened) return;
        a.opened = true;
        a.at = env.now();
        authTried = false;
        if (a === probe) {
          const from = current?.t.name;
          closeCurrent();
          probe = undefined;
          current = a;
          level = index;
          earlyDeaths = 0;
          diagnostic('transport-upgrade', `${from} -> ${t.name}: the better transport opened`, {
            from,
            to: t.name,
          });
        }
        remember(t.name);
        dispatch({ type: 'open', transport: t.name });
        scheduleProbe();
      },
      onMessages(answer) {
        if (!live() || a !== current) return;
        a.delivered ||= answer.messages.length > 0;
        deliver(answer);
      },
      onError(error) {
        if (!live()) return;
        const auth = isHttpError(error) && (error.status === 401 || error.status === 403);
        if (!a.opened && !auth && notOpen(why(index, error))) return;
        if (a === probe) return cannotOpen(a, error.message);
        drop(a);
        if (!demoted(a, floor, error)) failure(error, env.now() - a.started);
      },
      onClose() {
        if (!live()) return;
        if (!a.opened && notOpen(`${t.name} ended before open`)) return;
        drop(a);
        if (demoted(a, floor)) return;
        const held = env.now() - a.started;
        fastStreak = nextFastStreak(fastStreak, held, a.delivered);
        repoll(held);
      },
      onReply(id, messageId, error) {
        if (wsSend?.a === a && wsSend.id === id) wsSend.done({ messageId, error });
      },
    });
  }

  const why = (index: number, error: CometError) =>
    kinds[index]?.openFailure?.(error) ??
    `${kinds[index]?.name} failed before open: ${error.message}`;

  /** A transport could not open: the current one falls back, a probe tries the next or waits. */
  function cannotOpen(a: Attempt, reason: string) {
    const transports = ladder as Transport[];
    const next = transports[a.index + 1]?.name;
    if (a === probe) {
      closeProbe();
      diagnostic('transport-probe-failed', `${a.t.name} still does not open: ${reason}`, {
        transport: a.t.name,
        reason,
      });
      if (a.index + 1 < level) start(a.index + 1, true);
      else scheduleProbe();
      return;
    }
    level = a.index + 1;
    diagnostic('transport-fallback', `${reason}: now ${next}`, {
      from: a.t.name,
      to: next,
      reason,
    });
    connect();
  }

  /**
   * After an opened transport ended: demotes it when it went silent or died soon after opening
   * `EARLY_LIMIT` times in a row. Returns true when it did (and moved on).
   */
  function demoted(a: Attempt, floor: boolean, error?: CometError): boolean {
    if (!a.opened || floor) return false;
    const silent = isTimeoutError(error);
    earlyDeaths = env.now() - a.at < EARLY_MS ? earlyDeaths + 1 : 0;
    if (!silent && earlyDeaths < EARLY_LIMIT) return false;
    earlyDeaths = 0;
    level = a.index + 1;
    const next = (ladder as Transport[])[level]?.name;
    diagnostic(
      'transport-demoted',
      silent
        ? `${a.t.name} went silent (${error?.message}): now ${next}`
        : `${a.t.name} died ${EARLY_LIMIT} times soon after opening: now ${next}`,
      { from: a.t.name, to: next, reason: silent ? 'silent' : 'early-deaths' },
    );
    connect();
    return true;
  }

  /** While below the best transport, tries the better ones again now and then. */
  function scheduleProbe() {
    if (probeTimer !== undefined || probe || level === 0 || !o.upgradeInterval || closed) return;
    const delay = Math.round(o.upgradeInterval * (0.75 + env.random() / 2));
    probeTimer = env.setTimeout(() => {
      probeTimer = undefined;
      if (state.status === 'connected') start(0, true);
    }, delay);
  }

  function repoll(held: number) {
    const delay = repollDelay(fastStreak, o.backoff, env.random);
    if (delay === undefined) return connect();
    diagnostic('fast-repoll-backoff', `fast empty answers: poll in ${delay} ms`, {
      heldMs: held,
      delayMs: delay,
      streak: fastStreak,
    });
    retryTimer = env.setTimeout(() => connect(), delay);
  }

  /** After a failed poll: what `policy.ts` says (the same table as for sends). */
  function failure(error: CometError, held: number) {
    const action = classifyFailure('poll', error, o.auth !== undefined && !authTried);
    // Only an `HttpError` is classified `repoll` or `auth`.
    if (action === 'repoll' && isHttpError(error)) {
      // A proxy cut the held poll: lower `wait` to what the path allows, and poll again.
      const { status } = error;
      const lowered = loweredWait(held, wait);
      if (lowered !== undefined) {
        diagnostic('wait-lowered', `${status} after ${held} ms: wait now ${lowered} ms`, {
          status,
          heldMs: held,
          wait: lowered,
          previousWait: wait,
        });
        wait = lowered;
      }
      fastStreak = nextFastStreak(fastStreak, held);
      diagnostic('proxy-timeout', `${status} after ${held} ms: polling again`, {
        status,
        heldMs: held,
      });
      return repoll(held);
    }
    if (action === 'auth' && isHttpError(error)) return refreshAuth(error);
    if (action === 'fatal') return fail(error);
    if (isTimeoutError(error))
      diagnostic('watchdog-timeout', `no answer in ${error.waitedMs} ms: poll aborted`, {
        waitedMs: error.waitedMs,
      });
    retry(error, isHttpError(error) ? error.retryAfterMs : undefined);
  }

  function retry(error: CometError, retryAfter?: number) {
    const attempt = nextAttempt(state);
    const delay = retryAfter ?? backoffDelay(attempt, o.backoff, env.random);
    dispatch({ type: 'retry', error, retryInMs: delay });
    emit('error', error);
    diagnostic(
      retryAfter === undefined ? 'retry-scheduled' : 'retry-after',
      `${error.message}: retry ${attempt} in ${delay} ms`,
      {
        attempt,
        delayMs: delay,
        error: error.name,
        status: (error as HttpError).status,
      },
    );
    retryTimer = env.setTimeout(() => connect(), delay);
  }

  function fail(error: CometError) {
    closeCurrent();
    closeProbe();
    clearRetry();
    dispatch({ type: 'fail', error });
    emit('error', error);
    diagnostic('failed', `failed: ${error.message}`, {
      error: error.name,
      status: (error as HttpError).status,
    });
  }

  function refreshAuth(error: HttpError) {
    const auth = o.auth;
    if (!auth) return fail(error);
    authTried = true;
    authPending = true;
    diagnostic('auth-refresh', `${error.status}: asking auth`, { status: error.status });
    const gen = generation;
    Promise.resolve()
      .then(() => auth({ error }))
      .then(
        (fresh) => {
          authPending = false;
          if (fresh) authHeaders = { ...fresh };
          if (closed || gen !== generation) return;
          if (fresh) connect();
          else fail(error);
        },
        (cause) => {
          authPending = false;
          if (!closed && gen === generation) fail(new CometError('auth hook threw', { cause }));
        },
      );
  }

  function deliver(answer: ParsedAnswer) {
    for (const [topic, body] of answer.errors) {
      if (!handlers.has(topic)) continue;
      forget(topic);
      handlers.delete(topic);
      const error = new TopicError(topic, `${topic} refused: ${body.message}`, body.code);
      diagnostic('topic-refused', error.message, { topic, code: body.code });
      emit('error', error);
      scheduleFlush();
    }
    for (const topic of answer.resets) {
      if (!handlers.has(topic)) continue;
      const cursor = cursors.get(topic);
      const position = answer.cursors.get(topic);
      // A reset may start a new id space: old ids say nothing about new ones.
      seen.delete(topic);
      if (position === undefined) cursors.delete(topic);
      else cursors.set(topic, position);
      diagnostic('topic-reset', `reset ${topic}`, { topic, cursor, position });
      emit('reset', { topic, cursor, position });
    }
    for (const { topic, id, data } of answer.messages) {
      const subscriptions = handlers.get(topic);
      if (closed || !subscriptions) continue;
      if (id !== undefined) {
        let ids = seen.get(topic);
        if (!ids) {
          ids = new Set();
          seen.set(topic, ids);
        }
        if (ids.has(id)) {
          diagnostic('duplicate-dropped', `duplicate ${id}`, { topic, id });
          continue;
        }
        ids.add(id);
        if (ids.size > SEEN_LIMIT) ids.delete(ids.values().next().value as string);
        cursors.set(topic, id);
      }
      const message: CometMessage = { topic, id, data };
      for (const s of [...subscriptions])
        if (subscriptions.has(s)) call(s.callback, [data, message]);
      emit('message', message);
    }
    for (const [topic, id] of answer.cursors) if (handlers.has(topic)) cursors.set(topic, id);
  }

  function forget(topic: string) {
    cursors.delete(topic);
    seen.delete(topic);
  }

  // ---- the topic set: applied once per tick, however many changes the tick made ----
  function scheduleFlush() {
    if (flushQueued) return;
    flushQueued = true;
    queueMicrotask(flush);
  }
  function flush() {
    flushQueued = false;
    if (closed) return;
    for (const topic of [...cursors.keys(), ...seen.keys()])
      if (!handlers.has(topic)) forget(topic);
    if (handlers.size === 0) {
      if (state.status !== 'idle' && idleTimer === undefined)
        idleTimer = env.setTimeout(stop, o.idleGrace);
      return;
    }
    env.clearTimeout(idleTimer);
    idleTimer = undefined;
    if (state.status === 'idle') return connect();
    if (state.status === 'failed' || state.status === 'offline') return;
    if (current) {
      const topics = [...handlers.keys()];
      if (topics.length === current.topics.length && current.topics.every((t) => handlers.has(t)))
        return;
      diagnostic('topics-changed', 'topics changed: poll sent again', { topics });
      // The probe's request names the old topics.
      closeProbe();
      scheduleProbe();
      if (!current.handle?.update) return connect();
      current.topics = topics;
      return current.handle.update(pollRequest());
    }
    if (retryTimer === undefined && !authPending) connect();
  }
  function stop() {
    idleTimer = undefined;
    if (handlers.size > 0 || closed) return;
    closeCurrent();
    closeProbe();
    clearRetry();
    fastStreak = 0;
    diagnostic('idle-stop', 'no topics: stopped');
    dispatch({ type: 'stop' });
  }

  // ---- sends: one at a time, in order, retried with the same id ----
  const sendQueue: QueuedSend[] = [];
  let pumping = false;
  let wakeSends: (() => void) | undefined;
  let sendAbort: AbortController | undefined;

  function sleep(ms?: number) {
    return new Promise<void>((resolve) => {
      const timer = ms === undefined ? undefined : env.setTimeout(() => done(), ms);
      const done = () => {
        env.clearTimeout(timer);
        wakeSends = undefined;
        resolve();
      };
      wakeSends = done;
    });
  }
  const sendsPaused = () =>
    state.status === 'offline' || state.status === 'reconnecting' || !env.online.isOnline();

  async function pump() {
    if (pumping) return;
    pumping = true;
    while (!closed && sendQueue.length > 0) {
      const item = sendQueue[0] as QueuedSend;
      if (sendsPaused()) {
        await sleep();
        continue;
      }
      const outcome = await attemptSend(item);
      if (closed) break;
      if (outcome.type === 'retry') {
        item.attempt++;
        diagnostic(
          'send-retry',
          `send: ${outcome.error.message}: retry ${item.attempt} in ${outcome.delay} ms`,
          { topic: item.topic, attempt: item.attempt, delayMs: outcome.delay },
        );
        if (outcome.delay > 0) await sleep(outcome.delay);
        continue;
      }
      sendQueue.shift();
      if (outcome.type === 'done') item.resolve(outcome.messageId);
      else item.reject(outcome.error);
    }
    pumping = false;
  }

  /** A send over the open WebSocket: `ack` resolves, `nack` is handled like the HTTP answer. */
  async function sendFrame(item: QueuedSend, a: Attempt): Promise<HttpError | Lost | Done> {
    const reply = await new Promise<Reply>((resolve) => {
      const timer = env.setTimeout(() => done(undefined), o.watchdogGrace);
      const done = (r: Reply) => {
        env.clearTimeout(timer);
        wsSend = undefined;
        resolve(r);
      };
      wsSend = { a, id: item.id, done };
      a.handle?.send?.({
        type: 'send',
        topic: item.topic,
        id: item.id,
        data: item.data,
        sessionGuid,
        userId: o.userId,
      });
    });
    if (reply?.messageId !== undefined) return { type: 'done', messageId: reply.messageId };
    if (!reply?.error)
      // Lost (or unanswered) before the ack: again at once, over whatever is current then.
      return { type: 'lost', error: new NetworkError('no ack on the WebSocket'), delay: 0 };
    return nackError(reply.error);
  }

  /** A send as `POST {base}/{topic}`. */
  async function sendPost(item: QueuedSend, base: string): Promise<HttpError | Lost | Done> {
    sendAbort = new AbortController();
    let response: Response;
    let text: string;
    try {
      response = await http.post(`${base}/${encodeURIComponent(item.topic)}`, {
        body: item.body,
        headers: { 'content-type': 'application/json', ...(await headers()) },
        signal: sendAbort.signal,
        // A send that hangs would hold the whole queue: give up and retry it (same id).
        timeout: o.watchdogGrace,
      });
      text = await response.text();
    } catch (cause) {
      return { type: 'lost', error: networkError(cause) };
    }
    if (response.status === 200) {
      const answer = parseJson(text) as { messageId?: unknown } | null;
      return typeof answer?.messageId === 'string'
        ? { type: 'done', messageId: answer.messageId }
        : { type: 'lost', error: new ProtocolError('bad answer: messageId') };
    }
    return httpError(response, text, env.now());
  }

  async function attemptSend(item: QueuedSend): Promise<SendOutcome> {
    const base = resolveUrl();
    if (base === undefined) return { type: 'fatal', error: badUrl() };
    const later = (error: CometError, after?: number): SendOutcome => ({
      type: 'retry',
      error,
      delay: after ?? backoffDelay(item.attempt + 1, o.backoff, env.random),
    });
    const error = await (current?.opened && current.handle?.send
      ? sendFrame(item, current)
      : sendPost(item, base));
    if (!isHttpError(error)) return error.type === 'done' ? error : later(error.error, error.delay);
    // The same table as for polls (`policy.ts`), with the auth hook asked once per send.
    const action = classifyFailure('send', error, o.auth !== undefined && !item.authTried);
    if (action === 'auth') {
      item.authTried = true;
      try {
        const fresh = await o.auth?.({ error });
        if (fresh) {
          authHeaders = { ...fresh };
          return later(error, 0);
        }
      } catch {
        // A throwing hook is a refusal.
      }
    }
    if (action === 'retry') return later(error, error.retryAfterMs);
    return { type: 'fatal', error };
  }

  // ---- the public client ----
  const client: CometClient = {
    sessionGuid,

    subscribe(topic, callback, subscribeOptions) {
      if (closed) throw new ClosedError();
      const topics = list(topic);
      for (const t of topics) {
        const error = topicError(t);
        if (error) throw error;
      }
      if (typeof callback !== 'function') throw new CometError('callback must be a function');
      const cursor = checkCursor(subscribeOptions);
      const subscription: Subscription = { callback: callback as MessageHandler };
      for (const t of topics) {
        let set = handlers.get(t);
        if (!set) {
          set = new Set();
          handlers.set(t, set);
          if (cursor !== undefined && !cursors.has(t)) cursors.set(t, cursor);
        }
        set.add(subscription);
      }
      scheduleFlush();
      let active = true;
      return () => {
        if (!active) return;
        active = false;
        for (const t of topics) {
          const set = handlers.get(t);
          if (set?.delete(subscription) && set.size === 0) handlers.delete(t);
        }
        scheduleFlush();
      };
    },

    unsubscribe(topic) {
      const topics = topic === undefined ? [...handlers.keys()] : list(topic);
      for (const t of topics) {
        const error = topicError(t);
        if (error) throw error;
      }
      for (const t of topics) handlers.delete(t);
      scheduleFlush();
    },

    send(topic, data) {
      if (closed) return Promise.reject(new ClosedError());
      const error = topicError(topic);
      if (error) return Promise.reject(error);
      let body: string;
      const id = env.randomUUID();
      try {
        if (data === undefined) throw new TypeError('data is undefined');
        body = JSON.stringify({ v: 1, sessionGuid, userId: o.userId, id, data });
      } catch (cause) {
        return Promise.reject(new CometError('data must be JSON', { cause }));
      }
      if (sendQueue.length >= o.sendQueueLimit)
        return Promise.reject(new QueueFullError(o.sendQueueLimit));
      watchOnline();
      return new Promise<string>((resolve, reject) => {
        sendQueue.push({ topic, id, data, body, attempt: 0, authTried: false, resolve, reject });
        void pump();
      });
    },

    reconnect(reason) {
      if (closed) return;
      diagnostic('reconnect-requested', `reconnect: ${reason}`, {
        reason,
      });
      authTried = false;
      fastStreak = 0;
      wakeSends?.();
      if (handlers.size > 0) connect(true);
    },

    close() {
      if (closed) return;
      closeCurrent();
      closeProbe();
      clearRetry();
      env.clearTimeout(idleTimer);
      closed = true;
      stopOnline?.();
      sendAbort?.abort();
      for (const item of sendQueue.splice(0)) item.reject(new ClosedError());
      wakeSends?.();
      dispatch({ type: 'close' });
      handlers.clear();
      stores.clear();
      emitter.removeAllListeners();
    },

    getState: () => state,

    subscribeState(listener) {
      return client.on('state', (next) => listener(next));
    },

    on(event, listener) {
      if (closed) return () => {};
      emitter.on(event, listener);
      return () => {
        emitter.off(event, listener);
      };
    },

    topicStore(topic, storeOptions) {
      const error = topicError(topic);
      if (error) throw error;
      const cursor = checkCursor(storeOptions);
      const keep = storeOptions?.keep ?? 1;
      if (!Number.isInteger(keep) || keep < 1)
        throw new CometError(`keep must be an integer >= 1: ${keep}`);
      // A space never occurs in a topic, so the key is unambiguous.
      const key = `${keep} ${topic}`;
      const existing = stores.get(key);
      // The store's types come from the caller's topic map; at runtime every store is the same.
      if (existing) return existing as never;
      let snapshot: TopicSnapshot = { latest: undefined, messages: [] };
      const listeners = new Set<{ onChange: () => void }>();
      let stopTopic: (() => void) | undefined;
      const store: TopicStore = {
        getSnapshot: () => snapshot,
        subscribe(onChange) {
          if (closed) return () => {};
          const entry = { onChange };
          listeners.add(entry);
          // Cached again when started again (e.g. React StrictMode's second mount holds this
          // store), unless a newer store for the key took its place meanwhile.
          if (!stores.has(key)) stores.set(key, store);
          stopTopic ??= client.subscribe(
            topic,
            (_data, message) => {
              snapshot = {
                latest: message,
                messages: [...snapshot.messages, message].slice(-keep),
              };
              for (const l of [...listeners]) call(l.onChange, []);
            },
            // Started again: after the latest message it has, so the snapshot never repeats one.
            { cursor: cursor && (snapshot.latest?.id ?? cursor) },
          );
          return () => {
            if (listeners.delete(entry) && listeners.size === 0) {
              stopTopic?.();
              stopTopic = undefined;
              // Not kept once unused, so an app that goes through many topics does not keep
              // every one's store and messages. Whoever holds it may start it again.
              if (stores.get(key) === store) stores.delete(key);
            }
          };
        },
      };
      stores.set(key, store);
      return store as never;
    },
  };
  return client as unknown as CometClient<Topics>;
}
