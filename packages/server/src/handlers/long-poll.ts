/**
 * `POST {base}`: the long-poll transport. One poll, answered at once (messages, a handshake,
 * refusals) or held on a {@link TopicWatch} until a publish or its deadline, then answered as
 * JSON. The legacy shape (no `"v"`) is answered here too.
 */
import type { ServerResponse } from 'node:http';
import type { Cursors, LegacyAnswer, PollAnswer, TopicErrorBody } from '@cometkit/core/protocol';
import type { BrokerReadResult } from '../broker';
import { authorizeTopics, refusalError } from '../engine/authorize';
import type { ConnectionIdentity, LiveConnection } from '../engine/connections';
import type { Abortable, EngineContext } from '../engine/context';
import { type Caller, callerOf } from '../engine/credentials';
import {
  encodeAnswer,
  encodeLegacy,
  encodeWoken,
  NOTHING_READ,
  readTopic,
  readTopics,
} from '../engine/read';
import { parsePollRequest, type ValidPoll } from '../engine/request';
import { type Sleeper, TopicWatch } from '../engine/wake';
import { answerWire, type WireAnswer } from '../engine/wire';
import {
  type EncodedJson,
  encodeJson,
  type FrameworkRequest,
  readJsonBody,
  sendEncodedJson,
  sendJson,
} from '../http';
import { reportDelivered } from '../observer';

/**
 * Handles one long-poll. Resolves once the poll is answered or held: a held poll is then a
 * {@link LongPoll} and its watch, in the broker's listeners, the shared hold timer and the
 * drain set, with no promise or suspended function of its own until a publish wakes it.
 */
export async function handleLongPoll(
  context: EngineContext,
  req: FrameworkRequest,
  res: ServerResponse,
): Promise<void> {
  const poll = parsePollRequest(
    await readJsonBody(req, context.options.bodyLimit, context.drain),
    context.options.maxTopics,
    context.options.maxDepth,
  );
  const caller = await callerOf(context.options, req, poll);
  await context.limits?.request(caller);
  context.sessions.acquire(poll.sessionGuid);
  await new LongPoll(context, res, poll.legacy, caller).start(poll);
}

/** Where a long-poll is: before its hold, held, reading after a wake-up, or answered/gone. */
type LongPollState = 'starting' | 'holding' | 'reading' | 'done';

const NO_CURSORS: ReadonlyMap<string, string> = new Map();
const NO_ERRORS: ReadonlyMap<string, TopicErrorBody> = new Map();

/** Where a response keeps its long-poll, for the one `close` listener that all of them share. */
const POLL = Symbol('cometkit.longPoll');
type PolledResponse = ServerResponse & { [POLL]?: LongPoll };

/**
 * `close` on a poll's response: it fires when the response is finished, or when the socket went
 * away first (then the poll is dropped). One function for every poll, not a closure per hold.
 */
function onResponseClose(this: PolledResponse): void {
  if (!this.writableEnded) this[POLL]?.abort('gone');
}

/**
 * One long-poll from its parsed body to its answer. Thousands are held at once, so a held one
 * keeps its topics and their positions, not the request body, its cursor map or a read; and it
 * is itself what the drain set, the connection registry and its response's `close` listener
 * hold, with no closure of its own (its watch has the one broker listener).
 */
class LongPoll implements Abortable, Sleeper, LiveConnection {
  readonly #context: EngineContext;
  readonly #res: ServerResponse;
  readonly #legacy: boolean;
  /** Who polls; its `sessionGuid` is counted in the session's holds until {@link #dispose}. */
  readonly #caller: Caller;
  #state: LongPollState = 'starting';
  /** A drain that came before the hold began or during a read: acted on when it ends. */
  #draining = false;
  #topics: readonly string[] = [];
  /** The position of each of `#topics` (same index) after what was read. */
  #positions: string[] = [];
  /** On the monotonic clock (`performance.now()`), as the hold timer's ticks are. */
  #deadline = 0;
  #watch: TopicWatch | undefined = undefined;
  /** Ends this poll's hold on its presence entries. */
  #present: (() => void) | undefined = undefined;

  /** Takes over the session hold that `handleLongPoll` acquired for `caller`. */
  constructor(context: EngineContext, res: ServerResponse, legacy: boolean, caller: Caller) {
    this.#context = context;
    this.#caller = caller;
    this.#res = res;
    this.#legacy = legacy;
    (res as PolledResponse)[POLL] = this;
    res.on('close', onResponseClose);
    context.held.add(this);
    context.connections.add(this);
  }

  /** Who this poll is from (the connection registry's filter reads it). */
  who(): ConnectionIdentity {
    return this.#caller;
  }

  /** `disconnect()` matched it: answered `reconnect`. */
  revoke(): void {
    this.abort('revoked');
  }

  /** Authorizes, listens, reads; answers at once or holds. Throws what the route answers. */
  async start(poll: ValidPoll): Promise<void> {
    const context = this.#context;
    try {
      const { allowed, errors } = await authorizeTopics(context, this.#caller, poll.topics);
      if (this.#ended()) return;
      if (allowed.length === 0) {
        if (this.#legacy) throw refusalError(errors.values().next().value);
        return this.#answerText(encodeAnswer(NOTHING_READ, errors), []);
      }
      this.#topics = allowed;
      const present = context.presence?.hold(this.#caller, allowed);
      this.#present = present?.release;
      if (present) await present.ready;
      if (this.#ended()) return;
      if (this.#startWire(poll, allowed, errors)) return;
      // Listening starts before the first read so that a publish in between is not missed.
      this.#watch = new TopicWatch(context, allowed, this);
      const read = this.#legacy
        ? await readTopics(context, allowed, NO_CURSORS)
        : await readTopics(context, allowed, poll.cursors, false, poll.rewind);
      if (this.#ended()) return;
      if (!this.#legacy) {
        const handshake = allowed.some((topic) => !poll.cursors.has(topic));
        if (read.messages.length > 0 || read.resets.length > 0 || errors.size > 0 || handshake) {
          return this.#answerText(encodeAnswer(read, errors), read.messages);
        }
      }
      // The legacy shape holds from the current position, whatever was asked.
      this.#positions = allowed.map((topic) => read.cursors.get(topic) as string);
      this.#holdFor(poll);
    } finally {
      // Thrown before its answer: the route answers the error; nothing stays registered.
      if (this.#state === 'starting') this.#dispose();
    }
  }

  /**
   * A v1 poll of one topic after a cursor, read as wire bytes (the memory broker): answered
   * from them at once, or held from the position read. False when it cannot be read so (the
   * broker, several topics, refusals, a handshake, a reset): `start` reads the usual way.
   */
  #startWire(
    poll: ValidPoll,
    allowed: readonly string[],
    errors: ReadonlyMap<string, unknown>,
  ): boolean {
    if (this.#legacy || allowed.length !== 1 || errors.size > 0) return false;
    const topic = allowed[0] as string;
    const cursor = poll.cursors.get(topic);
    if (cursor === undefined) return false;
    const wired = answerWire(this.#context, topic, cursor);
    if (wired === undefined) return false;
    this.#positions = [cursor];
    if (!this.#tookWire(topic, wired)) {
      // The read was synchronous: nothing can have been published since, so listening starts
      // now, and an answered poll never listens at all.
      this.#watch = new TopicWatch(this.#context, allowed, this);
      this.#holdFor(poll);
    }
    return true;
  }

  /**
   * Answers a wire read with messages (true), or moves the position to where it read (false:
   * the caller holds on).
   */
  #tookWire(topic: string, wired: WireAnswer): boolean {
    if (wired.body !== undefined) {
      this.#context.observer?.delivered('longpoll', topic, wired.count);
      this.#answerEncoded(wired.body);
      return true;
    }
    this.#positions[0] = wired.position;
    return false;
  }

  /**
   * Stops the poll: `'gone'` drops it; `'drain'` and `'revoked'` (`disconnect()`) answer it
   * with `reconnect` (the client polls again at once, and `authorize` decides).
   */
  abort(reason?: unknown): void {
    if (this.#state === 'done') return;
    if (reason === 'gone') this.#dispose();
    else if (this.#state === 'holding') this.#answer(this.#reconnect());
    // Before the hold, or while a wake-up reads: what it read still goes out, else `reconnect`.
    else this.#draining = true;
  }

  /** The deadline came first (from the watch). */
  timedOut(): void {
    if (this.#state === 'holding') this.#answer(this.#reconnect());
  }

  /** A publish woke the poll (from the watch): read what it brought. */
  woken(): void {
    if (this.#state !== 'holding') return;
    this.#state = 'reading';
    const context = this.#context;
    const only = this.#only();
    if (only !== undefined) {
      // A broker that reads without I/O (the memory broker): read, encode and write in this
      // turn, with no promise in between (after an idle moment this path runs cold, and every
      // step it skips is microseconds of latency).
      try {
        const cursor = this.#positions[0] as string;
        const wired = context.reads.answerWire(context, only, cursor);
        if (wired !== undefined) {
          if (!this.#tookWire(only, wired)) this.#hold();
          return;
        }
        const result = context.reads.readNow(only, cursor);
        // A reset of a presence topic starts over with a sync of its members: read again, async.
        if (result !== undefined && !(result.reset && context.presence)) {
          this.#took(only, result);
          return;
        }
      } catch (error) {
        // Inside the wake-up of every poll this publish woke: nothing may escape to the others.
        this.#failed(error);
        return;
      }
    }
    context.track(this.#read());
  }

  /** The one topic of a v1 poll, or undefined (several topics, or a legacy poll). */
  #only(): string | undefined {
    return this.#topics.length === 1 && !this.#legacy ? this.#topics[0] : undefined;
  }

  /** Answers what a woken one-topic read brought, or holds on when it brought nothing. */
  #took(only: string, result: BrokerReadResult): void {
    const context = this.#context;
    if (result.messages.length > 0 || result.reset) {
      if (context.observer) reportDelivered(context.observer, 'longpoll', result.messages);
      this.#answerEncoded(encodeWoken(context, only, this.#positions[0] as string, result));
      return;
    }
    this.#positions[0] = result.position;
    // Nothing new after all (another poll at this cursor took it): hold on, same deadline.
    this.#hold();
  }

  /** A wake-up's read failed: the route's error answer, nothing left registered. */
  #failed(error: unknown): void {
    if (this.#state !== 'reading') return;
    this.#dispose();
    this.#context.fail(this.#res.req, this.#res, error);
  }

  /** Holds for the wait `poll` asked (at most `maxWait`). */
  #holdFor(poll: ValidPoll): void {
    const hold = this.#context.options.maxWait;
    this.#deadline = performance.now() + Math.min(poll.wait ?? hold, hold);
    this.#hold();
  }

  /** Holds until `#deadline`, or answers `reconnect` when it has passed or a drain came. */
  #hold(): void {
    if (this.#draining || performance.now() >= this.#deadline) {
      this.#answer(this.#reconnect());
      return;
    }
    this.#state = 'holding';
    this.#watch?.hold(this.#deadline);
  }

  async #read(): Promise<void> {
    const context = this.#context;
    const topics = this.#topics;
    try {
      const only = this.#only();
      if (only !== undefined) {
        // The common case (one topic, many clients at one cursor): shared read, shared bytes.
        const result = await readTopic(context, only, this.#positions[0], true);
        if (this.#state === 'reading') this.#took(only, result);
        return;
      }
      const cursors = new Map(
        topics.map((topic, index) => [topic, this.#positions[index] as string]),
      );
      const read = await readTopics(context, topics, cursors, true);
      if (this.#state !== 'reading') return;
      if (this.#legacy) {
        const first = read.messages[0];
        if (first) return this.#answerText(encodeLegacy(first), [first]);
      } else if (read.messages.length > 0 || read.resets.length > 0) {
        return this.#answerText(encodeAnswer(read, NO_ERRORS), read.messages);
      }
      this.#positions = topics.map((topic) => read.cursors.get(topic) as string);
      // Nothing new after all (another poll at this cursor took it): hold on, same deadline.
      this.#hold();
    } catch (error) {
      this.#failed(error);
    }
  }

  /** True once answered or dropped (read after an await: the state may have moved meanwhile). */
  #ended(): boolean {
    return this.#state === 'done';
  }

  #reconnect(): PollAnswer | LegacyAnswer {
    if (this.#legacy) return { reconnect: true };
    const cursors: Cursors = {};
    this.#topics.forEach((topic, index) => {
      cursors[topic] = this.#positions[index] as string;
    });
    return { cursors, reconnect: true };
  }

  #answer(body: PollAnswer | LegacyAnswer): void {
    const observer = this.#context.observer;
    if (observer) {
      if ('messages' in body && body.messages) {
        reportDelivered(observer, 'longpoll', body.messages);
      } else if ('topic' in body && typeof body.topic === 'string') {
        observer.delivered('longpoll', body.topic, 1);
      }
    }
    try {
      sendJson(this.#res, 200, body);
    } finally {
      this.#dispose();
    }
  }

  /** Answers a JSON text built from what was read (`messages`, counted as delivered). */
  #answerText(text: string, messages: readonly { topic: string }[]): void {
    const observer = this.#context.observer;
    if (observer && messages.length > 0) reportDelivered(observer, 'longpoll', messages);
    this.#answerEncoded(encodeJson(text, false));
  }

  /**
   * Writes `body`, then lets go of the poll: the bookkeeping waits until the answer is on its
   * way (on the path from a publish to the client, every step before the write is latency).
   */
  #answerEncoded(body: EncodedJson): void {
    try {
      sendEncodedJson(this.#res, body);
    } finally {
      this.#dispose();
    }
  }

  /** Leaves nothing behind: no listener, deadline, coalescing window or drain entry. */
  #dispose(): void {
    if (this.#state === 'done') return;
    this.#state = 'done';
    this.#watch?.close();
    this.#watch = undefined;
    this.#present?.();
    const context = this.#context;
    context.held.delete(this);
    context.connections.remove(this);
    this.#res.off('close', onResponseClose);
    context.sessions.release(this.#caller.sessionGuid);
  }
}
