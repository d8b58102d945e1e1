/**
 * A poll run as a subscription, for the transports that keep a connection open (stream and
 * WebSocket): `open` at once, then `messages` as they are published, each with the cursors
 * after it. The same engine as long-poll (authorize, read, {@link TopicWatch}, batch limit) in
 * a loop that carries the cursors forward; the transport only frames what it is given. With
 * `reauthorizeInterval`, `authorize` runs again on the open subscription with the caller's
 * current credentials; a topic refused then stops, and its refusal goes out in `errors`.
 */
import type { Cursors, TopicErrorBody } from '@cometkit/core/protocol';
import { authorizeTopics } from './authorize';
import type { EngineContext } from './context';
import type { Caller } from './credentials';
import { type EncodedMessage, readTopics, withMessages } from './read';
import type { ValidPoll } from './request';
import { TopicWatch } from './wake';

/** The payload of a stream's `open` event and of a WebSocket `open` frame (without timings). */
export interface OpenPayload {
  cursors: Cursors;
  resets?: string[];
  errors?: Record<string, TopicErrorBody>;
}

/** The payload of a stream's `messages` event and of a WebSocket `messages` frame. */
export interface MessagesPayload {
  /** The messages, their data already JSON text (encoded once, at publish). */
  messages: readonly EncodedMessage[];
  cursors: Cursors;
  /** Topics whose cursor fell out of history while the connection was open (rare). */
  resets?: string[];
  /** Topics refused by a later `authorize` (`reauthorizeInterval`): they are no longer read. */
  errors?: Record<string, TopicErrorBody>;
}

/** `payload` as the JSON text of an event or frame whose first fields are `head`'s. */
export function encodeMessagesPayload(
  head: Record<string, unknown>,
  payload: MessagesPayload,
): string {
  const { messages, ...tail } = payload;
  return withMessages(head, messages, tail);
}

/** Where a subscription writes; each call resolves once the transport took the data. */
export interface SubscriptionSink {
  /**
   * The first answer. `listening` is false when every topic was refused: the subscription
   * ends right after, with nothing to wait for.
   */
  open(payload: OpenPayload, listening: boolean): Promise<void>;
  messages(payload: MessagesPayload): Promise<void>;
}

/**
 * Runs `poll` as a subscription until `signal` aborts (or at once after `open` when every
 * topic is refused, or when a later check refuses the last one). `caller` gives the current
 * credentials (a WebSocket's change with its frames). Listener, hold and timer are gone when
 * it settles. Throws when the broker fails.
 */
export async function runSubscription(
  context: EngineContext,
  poll: ValidPoll,
  caller: () => Caller,
  signal: AbortSignal,
  sink: SubscriptionSink,
): Promise<void> {
  const { allowed, errors } = await authorizeTopics(context, caller(), poll.topics);
  if (signal.aborted) return;
  const refusals = errors.size > 0 ? { errors: Object.fromEntries(errors) } : {};
  if (allowed.length === 0) {
    // Nothing to listen to: the client drops the refused topics and opens a new connection.
    await sink.open({ cursors: {}, ...refusals }, false);
    return;
  }
  let topics = allowed;
  // Listening starts before the first read so that a publish in between is not missed.
  let waiter = createPublishWaiter(context, topics);
  let recheckDue = false;
  const interval = context.options.authorize ? context.options.reauthorizeInterval : undefined;
  const recheck =
    interval === undefined
      ? undefined
      : setInterval(() => {
          recheckDue = true;
          waiter.wake();
        }, interval);
  let present = context.presence?.hold(caller(), topics);
  try {
    if (present) await present.ready;
    let read = await readTopics(context, topics, poll.cursors, false, poll.rewind);
    if (signal.aborted) return;
    // `open` carries the positions before the first batch, so a client that keeps them and
    // loses the connection right after asks for that batch again. A rewound topic has none
    // before its recent messages: it is left out, so such a client rewinds again.
    const rewound = new Set(read.messages.map((message) => message.topic));
    const before: Cursors = {};
    for (const topic of topics) {
      if (poll.rewind.has(topic) && rewound.has(topic)) continue;
      const given = poll.cursors.get(topic);
      const position = read.cursors.get(topic);
      const value = given !== undefined && !read.resets.includes(topic) ? given : position;
      if (value !== undefined) before[topic] = value;
    }
    const resets = read.resets.length > 0 ? { resets: read.resets } : {};
    await sink.open({ cursors: before, ...resets, ...refusals }, true);
    let laterResets: string[] = [];
    let lost: Map<string, TopicErrorBody> | undefined;
    for (;;) {
      if (signal.aborted) return;
      if (read.messages.length > 0 || laterResets.length > 0 || lost) {
        await sink.messages({
          messages: read.messages,
          cursors: Object.fromEntries(read.cursors),
          ...(laterResets.length > 0 ? { resets: laterResets } : {}),
          ...(lost ? { errors: Object.fromEntries(lost) } : {}),
        });
        lost = undefined;
        if (signal.aborted || topics.length === 0) return;
      }
      // A full batch or an answer cut at its byte budget means more may follow, and a reset's
      // position is where delivery resumes, often with messages already after it: read on at
      // once, without waiting (and a check that came due while writing runs at once).
      if (read.resets.length === 0 && !read.more && !recheckDue) {
        if (!(await waiter.next(signal))) return;
      }
      if (recheckDue) {
        recheckDue = false;
        const verdict = await authorizeTopics(context, caller(), topics);
        if (signal.aborted) return;
        if (verdict.errors.size > 0) {
          // Nothing of a refused topic goes out after this point.
          lost = verdict.errors;
          topics = verdict.allowed;
          waiter.close();
          waiter = createPublishWaiter(context, topics);
          present?.release();
          present = context.presence?.hold(caller(), topics);
          const cursors = new Map([...read.cursors].filter(([topic]) => !lost?.has(topic)));
          read = { ...read, messages: [], cursors };
          if (topics.length === 0) {
            laterResets = [];
            continue;
          }
        }
      }
      read = await readTopics(context, topics, read.cursors, true);
      laterResets = read.resets;
    }
  } finally {
    if (recheck !== undefined) clearInterval(recheck);
    waiter.close();
    present?.release();
  }
}

/** A {@link TopicWatch} awaited in a loop. */
interface PublishWaiter {
  /** Resolves true after the next publish (and its coalescing window), false when `signal` aborts. */
  next(signal: AbortSignal): Promise<boolean>;
  /** Ends the current wait as if a publish came (the loop then does what it has to). */
  wake(): void;
  close(): void;
}

function createPublishWaiter(context: EngineContext, topics: readonly string[]): PublishWaiter {
  let settle: ((published: boolean) => void) | undefined;
  // No deadline: a subscription waits until a publish or its end.
  const watch = new TopicWatch(context, topics, {
    woken: () => settle?.(true),
    timedOut: () => settle?.(false),
  });
  return {
    next(signal) {
      if (signal.aborted) return Promise.resolve(false);
      return new Promise<boolean>((resolve) => {
        const onAbort = () => {
          watch.release();
          settle?.(false);
        };
        settle = (published) => {
          settle = undefined;
          signal.removeEventListener('abort', onAbort);
          resolve(published);
        };
        signal.addEventListener('abort', onAbort, { once: true });
        watch.hold();
      });
    },
    wake() {
      if (!settle) return;
      watch.release();
      settle(true);
    },
    close() {
      watch.close();
      settle?.(false);
    },
  };
}
