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
  /**
   * The message's data. The memory broker decodes it from `json` only when read (a getter on
   * the message's prototype): a broker that wraps it reads `message.data`, since spreading a
   * message (`{ ...message }`) copies only its own fields.
   */
  data: unknown;
  /**
   * `data` as JSON text, when the broker keeps it encoded (the memory broker encodes once, at
   * publish): the server answers it as is and never encodes the message again. A broker that
   * leaves it out still works: the server then encodes `data` for each answer, and skips (and
   * logs) a message that cannot be encoded rather than fail the answer.
   */
  json?: string;
  /**
   * The UTF-8 byte length of `json`, when the broker knows it (the memory broker counts it for
   * `historyMaxBytes`): an answer then sizes the message without scanning its text.
   */
  bytes?: number;
}

/** The answer to {@link Broker.read}. */
export interface BrokerReadResult {
  /** Messages after the cursor, oldest first, at most `limit`. */
  messages: BrokerMessage[];
  /**
   * The topic's position after `messages`: the id of the last message returned, or, when none
   * were returned, the topic's current position (the newest id, or the topic's "empty" position).
   * After a `reset`, the position delivery resumes from (see `reset`).
   */
  position: string;
  /**
   * True when the cursor is not in the broker's history (trimmed away, from another epoch or
   * another broker): the messages right after it cannot be known, so `messages` is empty and
   * `position` is where delivery resumes, skipping nothing the broker still holds that the
   * cursor's holder cannot have seen: just before the oldest message kept after the cursor (same
   * epoch), or just before the oldest message of the current epoch (another epoch: a restarted
   * Redis, a restarted memory broker). The server reports the topic in `resets`; the messages
   * between the cursor and `position` are what could not be recovered.
   */
  reset: boolean;
  /** True when more messages than `limit` follow `position`. */
  more: boolean;
}

/** Options of {@link Broker.publish}. */
export interface BrokerPublishOptions {
  /**
   * Publishes at most once per key: the first publish with `key` stores its message id for
   * `ttlMs`, in the same atomic step as the message itself; a later publish to the same topic
   * with the same key (a retried send, maybe on another instance, maybe after the first one's
   * process died) publishes nothing and resolves with that id. There is no "pending" state: a
   * crash before the step leaves nothing behind, a crash after it leaves both the message and
   * the record. Keys are per topic.
   */
  idempotency?: { key: string; ttlMs: number };
  /**
   * `data` as JSON text, when the caller encoded it already (the server encodes every publish
   * once, at its edge, to check it): a broker may keep this text instead of encoding `data`
   * again. It is `JSON.stringify(data)`; a broker that ignores it encodes `data` itself.
   */
  json?: string;
}

/** A present client as the broker keeps it (the wire's `PresenceMember`). */
export interface BrokerPresenceMember {
  id: string;
  userId?: string;
  data?: unknown;
}

/**
 * Presence entries with a TTL, kept per presence topic; joins and leaves are appended to that
 * topic's history (as `{event, member}` messages) in the same atomic step as the entry changes,
 * so each is published exactly once, whichever instance (or how many) made the change.
 */
export interface BrokerPresence {
  /**
   * Adds or renews `member` on `topic` until `ttlMs` from now. Publishes a `join` when the
   * member was not there or its `userId`/`data` changed; a plain renewal publishes nothing.
   */
  join(topic: string, member: BrokerPresenceMember, ttlMs: number): Promise<void>;
  /** Removes the member `memberId`; publishes a `leave` when it was there. */
  leave(topic: string, memberId: string): Promise<void>;
  /** Removes the members whose TTL passed, publishing a `leave` for each. */
  sweep(topic: string): Promise<void>;
  /**
   * Sweeps, then answers every member and the topic's position in one atomic step: the
   * members are exactly those after the messages up to `position`.
   */
  snapshot(topic: string): Promise<{ members: BrokerPresenceMember[]; position: string }>;
}

/** Options of {@link Broker.recent}. */
export interface BrokerRecentOptions {
  /** Only messages published in the last `maxAgeMs` ms (by the broker's clock). */
  maxAgeMs?: number;
}

/** {@link Broker.readNow}: a read at once, and the `read` it answers for. */
export type BrokerReadNow = ((topic: string, cursor: string, limit: number) => BrokerReadResult) & {
  readonly of: Broker['read'];
};

/**
 * {@link Broker.readWire}'s answer: the messages of a read as the bytes of their wire form.
 */
export interface BrokerWireRead {
  /**
   * The messages, oldest first, each as the UTF-8 bytes of `{"topic":…,"id":…,"data":…}` (the
   * protocol's message object), comma-separated within a chunk; a comma goes between chunks.
   */
  chunks: Buffer[];
  /** How many messages the chunks hold. */
  count: number;
  /** The chunks' bytes with one more per message (the commas of a JSON array around them). */
  bytes: number;
  /** As in {@link BrokerReadResult}. */
  position: string;
  /** As in {@link BrokerReadResult}: no messages when true. */
  reset: boolean;
  /** True when more messages follow `position` (the limit or the byte budget cut the read). */
  more: boolean;
}

/** {@link Broker.readWire}: a read at once as wire bytes, and the `read` it answers for. */
export type BrokerReadWire = ((
  topic: string,
  cursor: string,
  limit: number,
  maxBytes: number,
) => BrokerWireRead) & {
  readonly of: Broker['read'];
};

/** Storage and fan-out of messages, shared by every server instance that uses it. */
export interface Broker {
  /**
   * Appends `data` to `topic`'s history and wakes every listener; resolves with the new id.
   * With `options.idempotency`, publishes once per key (see {@link BrokerPublishOptions}).
   * Rejects, storing nothing, when `data` cannot be encoded as JSON. The server checks `data`
   * (its depth, no `bigint`) before it calls this.
   */
  publish(topic: string, data: unknown, options?: BrokerPublishOptions): Promise<string>;
  /**
   * Reads `topic` after `cursor`. Without a cursor (a handshake) it returns no messages and the
   * current position.
   */
  read(topic: string, cursor: string | undefined, limit: number): Promise<BrokerReadResult>;
  /**
   * {@link Broker.read} after a cursor, answered at once, for a broker that reads without I/O
   * (the memory broker): the server then answers a woken poll in the turn of the wake-up, with
   * no promise in between. Throws where `read` would reject. Optional: brokers that do I/O leave
   * it out. The server uses it only while `readNow.of` is this broker's `read`: a wrapper that
   * replaces `read` (spreading the memory broker into a new object, a `Proxy`) is read through
   * its own `read`.
   */
  readNow?: BrokerReadNow;
  /**
   * {@link Broker.readNow} for a broker that keeps each message as the bytes of its wire form
   * (the memory broker): at most `limit` messages after `cursor`, and no more than fit in
   * `maxBytes` as {@link BrokerWireRead.bytes} counts them (the first always goes in). A
   * one-topic long-poll answer is then written from those bytes as they are: nothing is decoded
   * or encoded per message. Optional, and used only while `readWire.of` is this broker's `read`.
   */
  readWire?: BrokerReadWire;
  /**
   * The last `limit` messages of `topic` still in history, oldest first, and the position after
   * them: for an application that shows history (a chat that catches up on reload) and then
   * subscribes from `position`.
   */
  recent(
    topic: string,
    limit: number,
    options?: BrokerRecentOptions,
  ): Promise<{ messages: BrokerMessage[]; position: string }>;
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
  /** Presence entries (optional: a server with `presence` needs a broker that has them). */
  readonly presence?: BrokerPresence;
  /** Releases timers and connections. */
  close(): Promise<void>;
}
