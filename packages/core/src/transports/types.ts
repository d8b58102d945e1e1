/**
 * The one interface every transport implements. A transport moves poll requests and answers;
 * the client decides everything else (retries, state, cursors), so transports stay small.
 */
import type { KyInstance } from 'ky';
import type { CometEnvironment } from '../environment';
import type { CometError } from '../errors';
import type { HttpPost } from '../http';
import type { HeaderRecord } from '../options';
import type { ParsedAnswer } from '../parse';
import type { ClientFrame, PollRequest, TopicErrorBody, TransportName } from '../protocol';

/** What a transport reports. Calls after `close()` are not made. */
export interface TransportHandlers {
  /** The transport is open (long-poll: the poll was answered with a 200). */
  onOpen(): void;
  /** An answer or a `messages` payload, already checked. */
  onMessages(answer: ParsedAnswer): void;
  /** The transport failed and is finished; the client decides what comes next. */
  onError(error: CometError): void;
  /** The transport ended normally (end of hold, end of stream): the client opens it again. */
  onClose(): void;
  /** The answer to a `send` frame (WebSocket only): the broker's id, or the refusal. */
  onReply?(id: string, messageId: string | undefined, error?: TopicErrorBody): void;
}

/** One open transport. */
export interface TransportHandle {
  /** Sends a frame over the open transport (WebSocket only). */
  send?(frame: ClientFrame): void;
  /**
   * Replaces the topic set on the open connection (WebSocket: a new `poll` frame). Transports
   * without it are opened again with the new request.
   */
  update?(request: PollRequest): void;
  /** Aborts; no handler is called afterwards. */
  close(): void;
}

/** What the client gives a transport. */
export interface TransportContext {
  /** The resolved base URL. */
  url: string;
  /** ky with the injected fetch, no retry, no timeout, no thrown HTTP errors (the stream). */
  http: KyInstance;
  /** How polls are posted: ky/fetch, or node:http in the Node entry point. */
  post: HttpPost;
  environment: CometEnvironment;
  /** The headers for the next request (options.headers, then the auth hook's). */
  headers(): Promise<HeaderRecord>;
  /** How long after the request's `wait` an unanswered request is dead, in ms. */
  watchdogGrace: number;
}

/** A transport. */
export interface Transport {
  readonly name: TransportName;
  open(request: PollRequest, handlers: TransportHandlers): TransportHandle;
}

/** Makes a transport for a client. */
export type TransportFactory = (context: TransportContext) => Transport;

/**
 * What the fallback ladder knows about a transport without naming it: whether it can run here,
 * whether it is a floor, and how to explain a failed open.
 */
export interface TransportDefinition {
  readonly name: TransportName;
  /**
   * True when the transport opens through every path (a plain request and answer), so there is
   * nothing to fall back to: it has no open timeout and is never demoted.
   */
  readonly floor: boolean;
  /** Why it cannot run in this environment, or undefined when it can. */
  unsupported?(environment: CometEnvironment): string | undefined;
  /** The diagnostic's reason when it failed before its open, when it knows a likely cause. */
  openFailure?(error: CometError): string;
  create: TransportFactory;
}
