/**
 * The topics the client follows: their callbacks, cursors, pending rewinds and recently
 * delivered ids. Delivers an answer's messages to the callbacks (dropping repeats), applies its
 * resets and refusals, keeps the cursors in `sessionStorage` when asked (`persistCursors`), and
 * applies the topic set once per tick however many changes the tick made. A topic refused for
 * its credentials (`unauthorized`, `forbidden`) is kept, with its cursor, while the `auth` hook
 * is asked once; only a second refusal in a row drops it.
 */
import type { ClientContext } from './context';
import { HttpError, TopicError } from './errors';
import type { ParsedAnswer } from './parse';
import type { Cursors, PollRequest, RewindSpec, TopicErrorBody } from './protocol';
import type { CometMessage, MessageHandler } from './types';
import type { TopicStart } from './validate';

/** Delivered ids remembered per topic to drop repeats. */
const SEEN_LIMIT = 256;

/** One `subscribe` call: one callback, possibly over several topics. */
interface Subscription {
  callback: MessageHandler;
}

/** The topic registry of one client. */
export interface TopicRegistry {
  /** True while at least one topic has a callback. */
  hasTopics(): boolean;
  /** The followed topics, in subscription order. */
  topics(): string[];
  /** True when `topics` is exactly the followed set. */
  isCurrent(topics: readonly string[]): boolean;
  /**
   * Adds `callback` to `topics`, starting a new topic at `start.cursor` (else a saved cursor,
   * else with `start.rewind`); returns its removal.
   */
  add(topics: readonly string[], callback: MessageHandler, start?: TopicStart): () => void;
  /** Removes every callback of `topics`. */
  remove(topics: readonly string[]): void;
  /** The poll request for the followed topics and their cursors. */
  pollRequest(wait: number): PollRequest;
  /**
   * Delivers a checked answer: refusals, resets, then messages, then cursors. Returns true
   * when a message was handed to a callback (not a repeat, not for a topic nobody follows).
   */
  deliver(answer: ParsedAnswer): boolean;
  /**
   * The `auth` hook answered for the topics refused for their credentials: with fresh headers
   * they are polled again (from their cursors); without, they are dropped with a `TopicError`.
   */
  authRefreshed(fresh: boolean): void;
  /**
   * True while `topic` is followed but the server has not placed its position yet (no cursor,
   * no answer to a request naming it): a message published now might come before that
   * position, so a send to it waits (read your own writes).
   */
  handshaking(topic: string): boolean;
  /**
   * The server answered a request naming `topics` (an `open`, a long-poll's answer): their
   * handshake is over even when it gave no cursor (a server of the original design).
   */
  answered(topics: readonly string[]): void;
  /** Forgets every topic (on `close()`). */
  clear(): void;
}

/** A refusal the `auth` hook may fix: the client's credentials, not the topic, were refused. */
const AUTH_CODES: Readonly<Record<string, number>> = { unauthorized: 401, forbidden: 403 };

/**
 * Makes the registry. `onTopicsChanged` runs once per tick after the topic set changed (a
 * microtask), when the connection applies the new set. `onAuthRefused` runs when a topic was
 * refused for its credentials and the `auth` hook should be asked (the connection asks it and
 * reports back with {@link TopicRegistry.authRefreshed}).
 */
export function createTopicRegistry(
  context: ClientContext,
  onTopicsChanged: () => void,
  onAuthRefused: (error: HttpError, topic: string) => void = () => {},
): TopicRegistry {
  const { events, options } = context;
  const handlers = new Map<string, Set<Subscription>>();
  const cursors = new Map<string, string>();
  // Per topic: the ids delivered lately, and the order they came in.
  const seen = new Map<string, [Set<string>, string[]]>();
  // Refused for their credentials: waiting for the auth hook, and asked once already.
  const refused = new Map<string, TopicErrorBody>();
  const retried = new Set<string>();
  const placed = new Set<string>();
  // Asked for by the subscription that started the topic; sent while it has no cursor.
  const rewinds = new Map<string, RewindSpec>();
  let flushQueued = false;
  const savedKey = `cometkit:cursors:${options.url}`;
  let saved: Cursors | undefined;
  let written: string | undefined;

  function drop(topic: string, body: TopicErrorBody) {
    forget(topic);
    handlers.delete(topic);
    retried.delete(topic);
    const error = new TopicError(topic, `${topic} refused: ${body.message}`, body.code);
    events.diagnostic('topic-refused', error.message, { topic, code: body.code });
    events.emit('error', error);
    scheduleFlush();
  }

  function forget(topic: string) {
    cursors.delete(topic);
    seen.delete(topic);
    placed.delete(topic);
    rewinds.delete(topic);
  }

  /** The cursors saved by this tab (read once); `{}` where there is no session storage. */
  function savedCursors(): Cursors {
    try {
      saved ??= JSON.parse(context.environment.sessionStorage()?.getItem(savedKey) || '{}');
    } catch {}
    saved ??= {};
    return saved;
  }

  /** Saves the followed topics' cursors when they changed; storage may be full or refused. */
  function save() {
    const json = JSON.stringify(Object.fromEntries(cursors));
    if (json === written) return;
    written = json;
    try {
      context.environment.sessionStorage()?.setItem(savedKey, json);
    } catch {
      // A full or refused storage costs the reload its continuation, nothing else.
    }
  }

  function scheduleFlush() {
    if (flushQueued) return;
    flushQueued = true;
    queueMicrotask(() => {
      flushQueued = false;
      if (context.closed) return;
      for (const topic of [...cursors.keys(), ...seen.keys(), ...placed])
        if (!handlers.has(topic)) forget(topic);
      onTopicsChanged();
    });
  }

  /**
   * True when `id` was delivered on `topic` already; otherwise remembers it. Keeps the last
   * `SEEN_LIMIT` to twice that many ids, forgotten a batch at a time: taking the oldest out of
   * the `Set` one by one (`values().next()`) walks the holes the earlier deletes left, a cost per
   * message that grows with the limit.
   */
  function isRepeat(topic: string, id: string): boolean {
    let entry = seen.get(topic);
    if (!entry) {
      entry = [new Set(), []];
      seen.set(topic, entry);
    }
    const [ids, order] = entry;
    if (ids.has(id)) return true;
    ids.add(id);
    if (order.push(id) > 2 * SEEN_LIMIT)
      for (const old of order.splice(0, SEEN_LIMIT)) ids.delete(old);
    return false;
  }

  return {
    hasTopics: () => handlers.size > 0,
    topics: () => [...handlers.keys()],
    isCurrent: (topics) =>
      topics.length === handlers.size && topics.every((topic) => handlers.has(topic)),

    add(topics, callback, start = {}) {
      const subscription: Subscription = { callback };
      for (const topic of topics) {
        let subscriptions = handlers.get(topic);
        if (!subscriptions) {
          subscriptions = new Set();
          handlers.set(topic, subscriptions);
          const cursor =
            start.cursor ?? (options.persistCursors ? savedCursors()[topic] : undefined);
          if (cursor !== undefined && !cursors.has(topic)) cursors.set(topic, cursor);
          if (start.rewind && !cursors.has(topic)) rewinds.set(topic, start.rewind);
        }
        subscriptions.add(subscription);
      }
      scheduleFlush();
      let active = true;
      return () => {
        if (!active) return;
        active = false;
        for (const topic of topics) {
          const subscriptions = handlers.get(topic);
          if (subscriptions?.delete(subscription) && subscriptions.size === 0)
            handlers.delete(topic);
        }
        scheduleFlush();
      };
    },

    remove(topics) {
      for (const topic of topics) handlers.delete(topic);
      scheduleFlush();
    },

    pollRequest(wait) {
      const request: PollRequest = {
        v: 1,
        sessionGuid: context.sessionGuid,
        userId: options.userId,
        topics: [...handlers.keys()],
        wait,
      };
      // Only topics in this request: an unsubscribe not yet flushed leaves its cursor behind.
      const positions = [...cursors].filter(([topic]) => handlers.has(topic));
      if (positions.length > 0) request.cursors = Object.fromEntries(positions);
      // A rewind goes out until the topic has a position (the answer that delivers it).
      const back = [...rewinds].filter(([topic]) => handlers.has(topic) && !cursors.has(topic));
      if (back.length > 0) request.rewind = Object.fromEntries(back);
      return request;
    },

    handshaking: (topic) => handlers.has(topic) && !cursors.has(topic) && !placed.has(topic),

    answered(topics) {
      for (const topic of topics) if (handlers.has(topic)) placed.add(topic);
    },

    deliver(answer) {
      let delivered = false;
      for (const [topic, body] of answer.errors) {
        if (!handlers.has(topic)) continue;
        const status = AUTH_CODES[body.code];
        if (status !== undefined && options.auth && !retried.has(topic)) {
          // Kept with its cursor: polled again once the auth hook gave fresh credentials.
          const first = refused.size === 0;
          refused.set(topic, body);
          events.diagnostic('auth-refresh', `${topic} refused (${body.code}): asking auth`, {
            topic,
            code: body.code,
          });
          if (first) onAuthRefused(new HttpError(status, body.code, body.message), topic);
          continue;
        }
        drop(topic, body);
      }
      for (const topic of answer.resets) {
        if (!handlers.has(topic)) continue;
        const cursor = cursors.get(topic);
        const position = answer.cursors.get(topic);
        // A reset may start a new id space: old ids say nothing about new ones.
        seen.delete(topic);
        if (position === undefined) cursors.delete(topic);
        else cursors.set(topic, position);
        events.diagnostic('topic-reset', `reset ${topic}`, { topic, cursor, position });
        events.emit('reset', { topic, cursor, position });
      }
      for (const { topic, id, data } of answer.messages) {
        const subscriptions = handlers.get(topic);
        if (context.closed || !subscriptions) continue;
        if (id !== undefined) {
          if (isRepeat(topic, id)) {
            events.diagnostic('duplicate-dropped', `duplicate ${id}`, { topic, id });
            continue;
          }
          cursors.set(topic, id);
        }
        const message: CometMessage = { topic, id, data };
        delivered = true;
        // A callback may unsubscribe another one of the same topic: it is not called then.
        for (const subscription of [...subscriptions])
          if (subscriptions.has(subscription)) events.call(subscription.callback, [data, message]);
        events.emit('message', message);
      }
      for (const [topic, id] of answer.cursors) {
        if (!handlers.has(topic)) continue;
        cursors.set(topic, id);
        events.emit('position', { topic, cursor: id });
        // Accepted again: a later refusal may ask the auth hook again.
        if (!answer.errors.has(topic)) retried.delete(topic);
      }
      if (options.persistCursors) save();
      return delivered;
    },

    authRefreshed(fresh) {
      const topics = [...refused];
      refused.clear();
      for (const [topic, body] of topics) {
        if (!handlers.has(topic)) continue;
        if (fresh) retried.add(topic);
        else drop(topic, body);
      }
    },

    clear() {
      handlers.clear();
    },
  };
}
