/**
 * What every part of one client shares: the resolved options, the environment, the HTTP
 * instance, the events, the credentials and the base URL. Made once by `createCometClient`.
 */
import ky, { type KyInstance } from 'ky';
import type { CometEnvironment } from './environment';
import { CometError, type HttpError } from './errors';
import { type ClientEvents, createEvents } from './events';
import { type HttpPost, kyPost } from './http';
import type { HeaderRecord, ResolvedOptions } from './options';

/** One client's shared parts. */
export interface ClientContext {
  readonly options: ResolvedOptions;
  readonly environment: CometEnvironment;
  /** A random UUID per client, sent with every request. */
  readonly sessionGuid: string;
  /** ky with the injected fetch; its own retry and timeout are off (only the client retries). */
  readonly http: KyInstance;
  /** How polls and sends are posted: `environment.post`, else through `http`. */
  readonly post: HttpPost;
  readonly events: ClientEvents;
  /** Set once by `close()`; every callback checks it. */
  closed: boolean;
  /** The headers for the next request: `options.headers`, then the auth hook's latest. */
  headers(): Promise<HeaderRecord>;
  /**
   * Asks the `auth` hook for fresh headers after `error` (about `topic` for a per-topic
   * refusal); resolves true when it gave some (they are used from now on). Rejects when the
   * hook throws. Refusals that come while the hook runs share its answer: one call for a poll,
   * a send and several topics refused together.
   */
  refreshAuth(error: HttpError, topic?: string): Promise<boolean>;
  /** The absolute base URL, or undefined when `url` is relative with no page to resolve it. */
  baseUrl(): string | undefined;
  /** The error for a base URL that cannot be resolved. */
  badUrl(): CometError;
}

/** Makes the shared parts of a client from its resolved options. */
export function createContext(options: ResolvedOptions): ClientContext {
  const environment = options.environment;
  let authHeaders: HeaderRecord = {};
  const http = ky.create({
    fetch: environment.fetch,
    retry: 0,
    timeout: false,
    throwHttpErrors: false,
  });
  let refreshing: Promise<boolean> | undefined;
  return {
    options,
    environment,
    sessionGuid: environment.randomUUID(),
    http,
    post: environment.post ?? kyPost(http),
    events: createEvents(),
    closed: false,
    headers: async () => ({ ...(await options.headers()), ...authHeaders }),
    refreshAuth(error, topic) {
      refreshing ??= (async () => {
        try {
          const fresh = await options.auth?.(topic === undefined ? { error } : { error, topic });
          if (fresh) authHeaders = { ...fresh };
          return Boolean(fresh);
        } finally {
          refreshing = undefined;
        }
      })();
      return refreshing;
    },
    baseUrl() {
      try {
        return new URL(options.url, (globalThis as { location?: { href: string } }).location?.href)
          .href;
      } catch {
        return undefined;
      }
    },
    badUrl: () =>
      new CometError(
        `url ${JSON.stringify(options.url)} is not absolute and there is no page location to resolve it against (in Node, pass an absolute url)`,
      ),
  };
}
