/**
 * The cometkit wire protocol, version 1: the contract between `@cometkit/core` and any cometkit
 * server. Types and constants only, plus topic validation, so the server can import this module
 * (`@cometkit/core/protocol`) without pulling in the client. See docs/protocol.md.
 */

/** The protocol version sent as `"v"`. A request without it is answered in the legacy shape. */
export const PROTOCOL_VERSION = 1;

/** The default base URL of the endpoint. */
export const DEFAULT_BASE_URL = '/api/comet';

/** The transports, in the client's default fallback order. */
export type TransportName = 'websocket' | 'stream' | 'longpoll';

/** Longest topic name accepted. */
export const MAX_TOPIC_LENGTH = 200;

/** Valid topics: 1 to 200 characters, first `[A-Za-z0-9]`, the rest `[A-Za-z0-9._:@/-]`. */
export const TOPIC_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:@/-]{0,199}$/;

/** Reserved path segments under the base URL (a topic never starts with `_`). */
export const STREAM_PATH = '_stream';
export const WEBSOCKET_PATH = '_ws';
/** The HTTP publish API, when a server enables it (server to server; browsers never call it). */
export const PUBLISH_PATH = '_publish';

/** `POST {base}/_leave`: a client says it leaves the presence of topics (presence). */
export const LEAVE_PATH = '_leave';

/**
 * Presence: the topic `topic + PRESENCE_SUFFIX` carries who is on `topic` (join, leave and sync
 * messages), on a server with presence on. Polling it makes the client present on `topic`.
 */
export const PRESENCE_SUFFIX = '@presence';

/** One client present on a topic: `id` per client instance (not its sessionGuid). */
export interface PresenceMember {
  id: string;
  userId?: string;
  /** Small application data the server allowed (its `presence.member` hook). */
  data?: unknown;
}

/**
 * The `data` of a message on a presence topic: a `join` (new member, or new data), a `leave`,
 * or a `sync` (every member now: the first message after a handshake or a reset).
 */
export type PresenceEvent =
  | { event: 'join' | 'leave'; member: PresenceMember }
  | { event: 'sync'; members: PresenceMember[] };

/** The body of `POST {base}/_leave`: the presence topics this client leaves. */
export interface LeaveRequest {
  v: 1;
  sessionGuid: string;
  topics: string[];
}

/** True when `topic` is a valid topic name. */
export function isValidTopic(topic: unknown): topic is string {
  return typeof topic === 'string' && TOPIC_PATTERN.test(topic);
}

/** Why `topic` is not valid, or undefined when it is. For clear error messages on both sides. */
export function topicProblem(topic: unknown): string | undefined {
  if (typeof topic !== 'string') return `a topic must be a string, got ${typeof topic}`;
  if (topic.length === 0) return 'a topic must not be empty';
  if (topic.length > MAX_TOPIC_LENGTH)
    return `a topic is at most ${MAX_TOPIC_LENGTH} characters, got ${topic.length}`;
  if (!/^[A-Za-z0-9]/.test(topic))
    return `topic ${JSON.stringify(topic.slice(0, 40))} must start with a letter or digit`;
  if (!TOPIC_PATTERN.test(topic))
    return `topic ${JSON.stringify(topic.slice(0, 40))} may only contain letters, digits and . _ : @ / -`;
  return undefined;
}

/**
 * Timings the server announces in its `open` (stream event and WebSocket frame), so the client's
 * watchdogs follow the server's configuration instead of a copy of its defaults. Both optional:
 * a server that announces nothing is assumed to use `DEFAULT_TIMINGS`.
 */
export interface ServerTimings {
  /** Stream: the period of the `: hb` heartbeat comments, in ms. */
  heartbeat?: number;
  /** WebSocket: the server closes a socket that sent nothing for this long, in ms. */
  idleTimeout?: number;
}

/** What a client assumes when the server announces no timings (the reference server's defaults). */
export const DEFAULT_TIMINGS: Required<ServerTimings> = { heartbeat: 15_000, idleTimeout: 45_000 };

/** `{topic: id}`: the last delivered message id per topic. */
export type Cursors = Record<string, string>;

/**
 * A topic's rewind in a poll request: start it with up to `count` of its most recent messages,
 * only those published in the last `since` ms when given. Both positive integers; at least one.
 */
export interface RewindSpec {
  count?: number;
  since?: number;
}

/** The poll request, the same object on every transport. */
export interface PollRequest {
  v: 1;
  sessionGuid: string;
  userId?: string;
  topics: string[];
  cursors?: Cursors;
  /**
   * Per topic without a cursor: deliver recent messages from history first (see
   * {@link RewindSpec}). Ignored for a topic that has a cursor.
   */
  rewind?: Record<string, RewindSpec>;
  /** How long the client is willing to have the request held, in ms. */
  wait?: number;
}

/** A message on the wire. */
export interface WireMessage {
  topic: string;
  id: string;
  data: unknown;
}

/** A per-topic refusal inside an otherwise good answer. */
export interface TopicErrorBody {
  code: string;
  message: string;
}

/** A 200 answer to a poll (every key optional). Also the payload of `open`/`messages` events. */
export interface PollAnswer {
  messages?: WireMessage[];
  cursors?: Cursors;
  reconnect?: boolean;
  resets?: string[];
  errors?: Record<string, TopicErrorBody>;
  /** Only in `open` (stream event, WebSocket frame): the server's timings. */
  timings?: ServerTimings;
}

/** The legacy answer shape: one message without id, or `{reconnect: true}`. */
export interface LegacyAnswer {
  topic?: string;
  data?: unknown;
  reconnect?: boolean;
}

/** Error codes of the error body. */
export type ErrorCode =
  | 'bad_request'
  | 'unauthorized'
  | 'forbidden'
  | 'not_found'
  | 'method_not_allowed'
  | 'too_large'
  | 'unsupported_media_type'
  | 'rate_limited'
  | 'unavailable'
  | 'internal';

/** The body of every non-200 answer from a cometkit server. */
export interface ErrorBody {
  error: { code: ErrorCode | (string & {}); message: string };
}

/** `POST {base}/{topic}` body. */
export interface SendRequest {
  v: 1;
  sessionGuid: string;
  userId?: string;
  /** A UUID made by the client; a repeat within the idempotency window publishes nothing. */
  id: string;
  data: unknown;
}

/** The 200 answer to a send. */
export interface SendAnswer {
  id: string;
  messageId: string;
}

/** One message of a `POST {base}/_publish` (the publish API, server to server). */
export interface PublishRequest {
  topic: string;
  data: unknown;
  /** Made by the publisher: a repeat within the idempotency window publishes nothing. */
  id?: string;
}

/** The body of a batch publish: published in order, validated all first. */
export interface PublishBatchRequest {
  messages: PublishRequest[];
}

/** The 200 answer to a publish (`id` when the request gave one). */
export interface PublishAnswer {
  id?: string;
  messageId: string;
}

/** The 200 answer to a batch publish: one entry per message, in order. */
export interface PublishBatchAnswer {
  results: PublishAnswer[];
}

/** WebSocket frames from the client. */
export type ClientFrame =
  | ({
      type: 'poll';
      /** The socket's credentials from this frame on (a browser sets no upgrade headers). */
      headers?: Record<string, string>;
    } & Omit<PollRequest, 'wait'>)
  | {
      type: 'send';
      topic: string;
      id: string;
      data: unknown;
      /** So that a send retried over HTTP after the socket died is recognised as a repeat. */
      sessionGuid?: string;
      userId?: string;
      /** New credentials for the socket, when they changed since the last frame that had some. */
      headers?: Record<string, string>;
    }
  | { type: 'ping' };

/** WebSocket frames from the server. */
export type ServerFrame =
  | ({ type: 'open' } & Omit<PollAnswer, 'messages' | 'reconnect'>)
  | {
      type: 'messages';
      messages: WireMessage[];
      cursors: Cursors;
      /** Topics a later check refused (`reauthorizeInterval`): no longer sent. */
      errors?: Record<string, TopicErrorBody>;
    }
  | { type: 'ack'; id: string; messageId: string }
  /** `retryAfter` (seconds): when a `rate_limited` or `unavailable` send may be tried again. */
  | { type: 'nack'; id: string; error: ErrorBody['error']; retryAfter?: number }
  /**
   * A frame the server could not take (not JSON, unknown type, invalid poll, a poll over the
   * rate limit, with `retryAfter` in seconds); the socket stays open.
   */
  | { type: 'error'; error: ErrorBody['error']; retryAfter?: number }
  | { type: 'pong' };
