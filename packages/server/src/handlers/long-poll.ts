import type { ServerResponse } from 'node:http';
import type { Cursors, LegacyAnswer, PollAnswer, TopicErrorBody } from '@cometkit/core/protocol';
import { CometServerError } from '../errors';
import type { Expiring, HoldBucket } from '../hold-timer';
import { type FrameworkRequest, readJsonBody, sendJson, sendJsonBytes } from '../http';
import {
  type Abortable,
  authorizeTopics,
  buildAnswer,
  encodeWoken,
  holdTime,
  parsePollRequest,
  readTopics,
  type ValidPoll,
  type WakeBatch,
} from '../poll';
import type { HandlerContext } from './context';

/**
 * `POST {base}`: one poll, answered at once or held. The request registers itself for
 * draining and unregisters (listener, deadline) the moment it is answered or its client leaves.
 * Resolves once the poll is answered or held: a held poll is then a {@link LongPoll} in the
 * broker's listeners, the shared hold timer and the drain set, with no promise or suspended
 * function of its own until a publish wakes it.
 */
export async function handleLongPoll(
  context: HandlerContext,
  req: FrameworkRequest,
  res: ServerResponse,
): Promise<void> {
  const poll = parsePollRequest(
    await readJsonBody(req, context.options.bodyLimit),
    context.options.maxTopics,
  );
  await new LongPoll(context, res, poll.legacy).start(poll, req);
}

/** Where a long-poll is: before its hold, held, reading after a wake-up, or answered/gone. */
type LongPollState = 'starting' | 'holding' | 'reading' | 'done';

const NO_CURSORS: ReadonlyMap<string, string> = new Map();
const NO_ERRORS: ReadonlyMap<string, TopicErrorBody> = new Map();

/**
 * One long-poll from its parsed body to its answer. Thousands are held at once, so a held one
 * is this object, two small closures (the broker listener and the response's `close`
 * listener), an entry in the broker's listeners, in the shared hold timer and in the drain set;
 * the topics and their positions are kept, not the request body, its cursor map or a read.
 */
class LongPoll implements Abortable, Expiring {
  readonly #context: HandlerContext;
  readonly #res: ServerResponse;
  readonly #legacy: boolean;
  readonly #onClose: () => void;
  readonly #onPublish: (topic: string) => void;
  #state: LongPollState = 'starting';
  /** A drain that came before the hold began or during a read: acted on when it ends. */
  #draining = false;
  /** A publish came since the last read (or since listening began). */
  #published = false;
  #topics: readonly string[] = [];
  /** The position of each of `#topics` (same index) after what was read. */
  #positions: string[] = [];
  /** On the monotonic clock (`performance.now()`), as the hold timer's ticks are. */
  #deadline = 0;
  #stopListening: (() => void) | undefined = undefined;
  #bucket: HoldBucket | undefined = undefined;
  #batch: WakeBatch | undefined = undefined;
  /** Made at the first wake-up only: an idle hold does not pay for it. */
  #fire: (() => void) | undefined = undefined;

  constructor(context: HandlerContext, res: ServerResponse, legacy: boolean) {
    this.#context = context;
    this.#res = res;
    this.#legacy = legacy;
    // `close` on the response fires when it is finished or when the socket goes away first.
    this.#onClose = () => {
      if (!res.writableEnded) this.abort('gone');
    };
    this.#onPublish = (topic) => {
      context.reads?.invalidate(topic);
      this.#published = true;
      if (this.#state === 'holding') this.#coalesce();
    };
    res.on('close', this.#onClose);
    context.held.add(this);
  }

  /** Authorizes, listens, reads; answers at once or holds. Throws what the route answers. */
  async start(poll: ValidPoll, req: FrameworkRequest): Promise<void> {
    const context = this.#context;
    try {
      const { allowed, errors } = await authorizeTopics(context, poll, req);
      if (this.#ended()) return;
      if (allowed.length === 0) {
        if (this.#legacy) throw refusal(errors);
        return this.#answer(buildAnswer({ messages: [], cursors: new Map(), resets: [] }, errors));
      }
      this.#topics = allowed;
      // Listening starts before the first read so that a publish in between is not missed.
      this.#stopListening = context.broker.listen(allowed, this.#onPublish);
      const read = await readTopics(context, allowed, this.#legacy ? NO_CURSORS : poll.cursors);
      if (this.#ended()) return;
      if (!this.#legacy) {
        const handshake = allowed.some((topic) => !poll.cursors.has(topic));
        if (read.messages.length > 0 || read.resets.length > 0 || errors.size > 0 || handshake) {
          return this.#answer(buildAnswer(read, errors));
        }
      }
      // The legacy shape holds from the current position, whatever was asked.
      this.#positions = allowed.map((topic) => read.cursors.get(topic) as string);
      this.#deadline = performance.now() + holdTime(poll, context.options);
      this.#hold();
    } finally {
      // Thrown before its answer: the route answers the error; nothing stays registered.
      if (this.#state === 'starting') this.#dispose();
    }
  }

  /** Stops the poll: `'drain'` answers it with `reconnect`, `'gone'` drops it. */
  abort(reason?: unknown): void {
    if (this.#ended()) return;
    if (reason === 'gone') this.#dispose();
    else if (this.#state === 'holding') this.#answer(this.#reconnect());
    // Before the hold, or while a wake-up reads: what it read still goes out, else `reconnect`.
    else this.#draining = true;
  }

  /** The hold's deadline (from the shared hold timer). */
  expire(): void {
    if (this.#state !== 'holding') return;
    this.#bucket = undefined;
    this.#answer(this.#reconnect());
  }

  /** Holds until `#deadline`, or answers `reconnect` when it has passed or a drain came. */
  #hold(): void {
    if (this.#draining || performance.now() >= this.#deadline) {
      this.#answer(this.#reconnect());
      return;
    }
    const context = this.#context;
    this.#state = 'holding';
    if (context.counters) context.counters.waiting += 1;
    this.#bucket = context.holds.add(this, this.#deadline);
    if (this.#published) this.#coalesce();
  }

  #coalesce(): void {
    if (this.#batch !== undefined) return;
    this.#fire ??= () => this.#wake();
    this.#batch = this.#context.wakes.schedule(this.#fire);
  }

  /** The end of the coalescing window: read what woke the poll. */
  #wake(): void {
    this.#batch = undefined;
    if (this.#state !== 'holding') return;
    this.#published = false;
    this.#leaveHold();
    this.#state = 'reading';
    this.#context.track(this.#read());
  }

  async #read(): Promise<void> {
    const context = this.#context;
    const topics = this.#topics;
    try {
      const only = topics.length === 1 && !this.#legacy ? topics[0] : undefined;
      if (only !== undefined && context.reads) {
        // The common case (one topic, many clients at one cursor): shared read, shared bytes.
        const result = await context.reads.read(only, this.#positions[0]);
        if (this.#state !== 'reading') return;
        if (result.messages.length > 0 || result.reset) {
          return this.#answerBytes(encodeWoken(only, result));
        }
        this.#positions[0] = result.position;
      } else {
        const cursors = new Map(
          topics.map((topic, index) => [topic, this.#positions[index] as string]),
        );
        const read = await readTopics(context, topics, cursors, true);
        if (this.#state !== 'reading') return;
        if (this.#legacy) {
          const first = read.messages[0];
          if (first) return this.#answer({ topic: first.topic, data: first.data });
        } else if (read.messages.length > 0 || read.resets.length > 0) {
          return this.#answer(buildAnswer(read, NO_ERRORS));
        }
        this.#positions = topics.map((topic) => read.cursors.get(topic) as string);
      }
      // Nothing new after all (another poll at this cursor took it): hold on, same deadline.
      this.#hold();
    } catch (error) {
      if (this.#state !== 'reading') return;
      this.#dispose();
      context.fail(this.#res.req, this.#res, error);
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
    this.#dispose();
    sendJson(this.#res, 200, body);
  }

  #answerBytes(body: Buffer): void {
    this.#dispose();
    sendJsonBytes(this.#res, body);
  }

  #leaveHold(): void {
    if (this.#state !== 'holding') return;
    const context = this.#context;
    if (context.counters) context.counters.waiting -= 1;
    if (this.#bucket !== undefined) context.holds.remove(this, this.#bucket);
    this.#bucket = undefined;
  }

  /** Leaves nothing behind: no listener, deadline, coalescing window or drain entry. */
  #dispose(): void {
    if (this.#ended()) return;
    const context = this.#context;
    this.#leaveHold();
    this.#state = 'done';
    this.#stopListening?.();
    this.#stopListening = undefined;
    if (this.#batch !== undefined && this.#fire !== undefined) {
      context.wakes.cancel(this.#batch, this.#fire);
    }
    this.#batch = undefined;
    context.held.delete(this);
    this.#res.off('close', this.#onClose);
  }
}

/** The error of a legacy poll whose every topic was refused (that shape has no `errors`). */
function refusal(errors: ReadonlyMap<string, TopicErrorBody>): CometServerError {
  const first = errors.values().next().value;
  return new CometServerError(
    first?.code === 'unauthorized' ? 401 : 403,
    first?.code ?? 'forbidden',
    first?.message ?? 'not allowed',
  );
}
