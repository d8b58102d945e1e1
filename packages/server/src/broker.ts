/**
 * The broker is where messages live between requests. Server instances keep nothing about a
 * client between two requests; everything they need to answer a poll is in the request
 * (topics, cursors) and in the broker. `@cometkit/server` ships an in-memory broker; the
 * Redis broker (`@cometkit/redis`) implements the same interface for many instances.
 */

/** One stored message. `id` is unique within its topic and increases in publish order. */
export interface BrokerMessage {
  topic: string;
  id: string;
  data: unknown;
}

/** The answer to {@link Broker.read}. */
export interface BrokerReadResult {
  /** Messages after the cursor, oldest first, at most `limit`. */
  messages: BrokerMessage[];
  /**
   * The topic's position after `messages`: the id of the last message returned, or, when none
   * were returned, the topic's current position (the newest id, or the topic's "empty" position).
   */
  position: string;
  /**
   * True when the cursor is not in the broker's history (trimmed away, from another epoch or
   * another broker): the messages after it cannot be known, so `messages` is empty and
   * `position` is the current one. The server reports the topic in `resets`.
   */
  reset: boolean;
  /** True when more messages than `limit` follow `position`. */
  more: boolean;
}

/**
 * Remembers the answer to a send for the idempotency window, so that a retried send (same
 * client-made id, possibly on another instance) publishes once.
 */
export interface IdempotencyStore {
  /**
   * Reserves `key` for the caller if nobody has it. Answers `{state: 'new'}` when the caller now
   * owns it (and must `complete` or `release` it), `{state: 'done', value}` with the stored
   * answer, or `{state: 'pending'}` while another request is still publishing it.
   */
  reserve(key: string, ttlMs: number): Promise<IdempotencyReservation>;
  /** Stores the answer for `key` for `ttlMs`. */
  complete(key: string, value: string, ttlMs: number): Promise<void>;
  /** Gives up a reservation (the publish failed), so a retry may try again. */
  release(key: string): Promise<void>;
}

export type IdempotencyReservation =
  | { state: 'new' }
  | { state: 'done'; value: string }
  | { state: 'pending' };

/** Storage and fan-out of messages, shared by every server instance that uses it. */
export interface Broker extends IdempotencyStore {
  /** Appends `data` to `topic`'s history and wakes every listener; resolves with the new id. */
  publish(topic: string, data: unknown): Promise<string>;
  /**
   * Reads `topic` after `cursor`. Without a cursor (a handshake) it returns no messages and the
   * current position.
   */
  read(topic: string, cursor: string | undefined, limit: number): Promise<BrokerReadResult>;
  /**
   * The last `limit` messages of `topic` still in history, oldest first, and the position after
   * them: for an application that shows history (a chat that catches up on reload) and then
   * subscribes from `position`.
   */
  recent(topic: string, limit: number): Promise<{ messages: BrokerMessage[]; position: string }>;
  /**
   * Calls `onPublish(topic)` whenever a message is published to one of `topics`, by this
   * instance or another one sharing the broker. A wake-up only: the listener reads with
   * {@link Broker.read}. Returns the function that stops listening.
   */
  listen(topics: readonly string[], onPublish: (topic: string) => void): () => void;
  /**
   * Calls `onError` when the broker loses its backing store (e.g. the Redis connection). Held
   * requests are then answered so clients retry elsewhere. Returns the function that stops.
   */
  onError?(onError: (error: Error) => void): () => void;
  /** Releases timers and connections. */
  close(): Promise<void>;
}
