/**
 * The public shape of `@cometkit/core`: the contract that `@cometkit/react`,
 * `@cometkit/angular` and applications code against. Implementation lives in `client.ts`.
 */
import type { CometError } from './errors';
import type { TransportName } from './protocol';

export type { TransportName } from './protocol';

/**
 * A map from topic name to the type of its messages' `data`, e.g.
 * `createCometClient<{ chat: ChatLine; typing: { who: string } }>()`.
 * Topics not in the map are still allowed and carry `unknown`.
 */
export type TopicMap = Record<string, unknown>;

/** The names a client accepts for its topic map: the map's keys, or any string. */
export type TopicName<Topics extends TopicMap> = Extract<keyof Topics, string> | (string & {});

/** The data type of `K` in `Topics`, `unknown` for a topic not in the map. */
export type TopicData<Topics extends TopicMap, K extends string> = K extends keyof Topics
  ? Topics[K]
  : unknown;

/** A delivered message. */
export interface CometMessage<T = unknown, K extends string = string> {
  topic: K;
  /** The broker's id, unique and increasing within the topic; undefined for legacy answers. */
  id: string | undefined;
  data: T;
}

/** Called with each message of a subscribed topic, once, in order. */
export type MessageHandler<T = unknown, K extends string = string> = (
  data: T,
  message: CometMessage<T, K>,
) => void;

/**
 * The connection state: a discriminated union on `status`, each variant with its own data.
 * A new object is made only on a real change, so it can be compared by identity.
 */
export type ConnectionState =
  /** No topic subscribed, nothing running. */
  | { status: 'idle' }
  /** Opening a transport (the first one, or after a failure). */
  | { status: 'connecting'; transport: TransportName; attempt: number }
  /** Receiving: a transport is open, or a long-poll answered. */
  | { status: 'connected'; transport: TransportName }
  /** Waiting `retryInMs` before attempt `attempt` after `error`. */
  | { status: 'reconnecting'; attempt: number; retryInMs: number; error: CometError }
  /** The runtime says it has no network; nothing is sent until it comes back. */
  | { status: 'offline' }
  /** Stopped on an error that retrying will not fix (400, 413, refused credentials). */
  | { status: 'failed'; error: CometError }
  /** `close()` was called; the client cannot be used again. */
  | { status: 'closed' };

export type ConnectionStatus = ConnectionState['status'];

/** What the client decided and why: for logs and support, never needed for correctness. */
export interface Diagnostic {
  /** A stable code, e.g. `watchdog-timeout`, `wait-lowered`, `transport-fallback`. */
  code: string;
  /** A sentence for a human. */
  message: string;
  /** Facts behind the decision (status, transport, waited ms, …). */
  detail?: Record<string, unknown>;
}

/** A `reset`: the server no longer has the history after the client's cursor for `topic`. */
export interface ResetEvent {
  topic: string;
  /** The client's cursor that the server could not continue from. */
  cursor: string | undefined;
  /** Where delivery continues from. */
  position: string | undefined;
}

/** The events of {@link CometClient.on}. */
export interface CometEvents {
  state: (state: ConnectionState, previous: ConnectionState) => void;
  message: (message: CometMessage) => void;
  error: (error: CometError) => void;
  reset: (event: ResetEvent) => void;
  diagnostic: (diagnostic: Diagnostic) => void;
  /**
   * The server told the client's position in a topic (a handshake, a reconnect, a held poll's
   * answer): delivery continues after `cursor`. Tabs sharing a connection keep it to hand over.
   */
  position: (event: { topic: string; cursor: string }) => void;
}

/** A snapshot of one topic as kept by {@link CometClient.topicStore}. */
export interface TopicSnapshot<T = unknown, K extends string = string> {
  /** The newest message, undefined before the first one. */
  latest: CometMessage<T, K> | undefined;
  /** The last `keep` messages, oldest first (a new array on each message). */
  messages: readonly CometMessage<T, K>[];
}

/**
 * An external store over one topic, shaped for `useSyncExternalStore` and Angular signals:
 * `subscribe` starts the topic subscription (ref-counted), `getSnapshot` is stable between
 * messages.
 */
export interface TopicStore<T = unknown, K extends string = string> {
  subscribe(onChange: () => void): () => void;
  getSnapshot(): TopicSnapshot<T, K>;
}

/** Options of {@link CometClient.topicStore}. */
export interface TopicStoreOptions {
  /**
   * How many recent messages the snapshot keeps.
   * @default 1, or `rewind` when given
   */
  keep?: number;
  /**
   * Where the store's topic starts when the client has no position in it yet, as
   * {@link SubscribeOptions.cursor}: the id of the last message the application already has
   * (e.g. from a history endpoint), so the store continues right after it. Stores for the same
   * topic and `keep` are shared, so only the first caller's `cursor` counts, and only when the
   * topic is not already followed; when the store starts again after its last subscriber left,
   * it continues after its latest message.
   * @default undefined (start from the server's current position)
   */
  cursor?: string;
  /** As {@link SubscribeOptions.rewind}; stores with different rewinds are different stores. */
  rewind?: number;
  /** As {@link SubscribeOptions.since}. */
  since?: number;
}

/** Options of {@link CometClient.subscribe}. */
export interface SubscribeOptions {
  /**
   * Where to start a topic the client has no position in yet: the id of the last message the
   * application already has (e.g. from a history endpoint), so delivery continues right after
   * it. Ignored for a topic the client already follows.
   * @default undefined (start from the server's current position)
   */
  cursor?: string;
  /**
   * Start a topic the client has no position in with up to this many of its most recent
   * messages from the server's history, then live ones, with no gap and no repeat (at most the
   * server's batch limit, 1 000 by default). Ignored when the topic has a position (from
   * `cursor`, a persisted cursor, or because it is already followed).
   * @default undefined (no history: start from the server's current position)
   */
  rewind?: number;
  /**
   * With or without `rewind`: only the messages published in the last `since` ms (by the
   * server's clock). Without `rewind`, all of those up to the batch limit.
   * @default undefined (any age)
   */
  since?: number;
}

/** A client from `createCometClient`. */
export interface CometClient<Topics extends TopicMap = TopicMap> {
  /** A random UUID for this client instance (one browser tab), sent with every request. */
  readonly sessionGuid: string;
  /** The `url` option: the endpoint's base URL, without a trailing slash. */
  readonly url: string;

  /**
   * Subscribes `callback` to one or more topics. The first subscription starts the
   * connection. Throws a `CometError` (`TopicError`) for an invalid topic name.
   * @returns the function that removes exactly this subscription.
   */
  subscribe<K extends TopicName<Topics>>(
    topic: K | readonly K[],
    callback: MessageHandler<TopicData<Topics, K>, K>,
    options?: SubscribeOptions,
  ): () => void;

  /** Removes every callback of the given topics; with no argument, of every topic. */
  unsubscribe(topic?: TopicName<Topics> | readonly TopicName<Topics>[]): void;

  /**
   * Publishes `data` to `topic` through the server (its `onSend` hook decides what a send
   * does). Retried with the same id after network errors, queued in order while offline or
   * reconnecting. A send to a topic this client subscribed to first waits until the server
   * placed that subscription, so the subscription receives the message (read your own
   * writes). Rejects with a `CometError` on a 4xx, a full queue, `close()`, or a
   * `TimeoutError` after `sendTimeout`.
   * @returns the broker's id of the published message; `undefined` when a server of the
   * original design accepted it (a 2xx without a `messageId`, such as `{"ok": true}`).
   */
  send<K extends TopicName<Topics>>(
    topic: K,
    data: TopicData<Topics, K>,
  ): Promise<string | undefined>;

  /** Drops the current request or connection and connects again now; `reason` goes to the diagnostic event. */
  reconnect(reason?: string): void;

  /** Stops everything for good: aborts requests, rejects queued sends, removes listeners. */
  close(): void;

  /** The current connection state (an immutable snapshot). */
  getState(): ConnectionState;

  /**
   * Calls `listener` after each state change. Shaped for `useSyncExternalStore`.
   * @returns the function that removes the listener.
   */
  subscribeState(listener: (state: ConnectionState) => void): () => void;

  /**
   * Listens to a client event.
   * @returns the function that removes the listener.
   */
  on<E extends keyof CometEvents>(event: E, listener: CometEvents[E]): () => void;

  /**
   * A store over `topic` for UI bindings; stores for the same topic and `keep` are shared (the
   * `cursor` of later calls is ignored) until the last listener leaves, when the client stops
   * caching it.
   */
  topicStore<K extends TopicName<Topics>>(
    topic: K,
    options?: TopicStoreOptions,
  ): TopicStore<TopicData<Topics, K>, K>;
}
