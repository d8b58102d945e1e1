/**
 * The one way polls and sends go over HTTP (`HttpPost`), its ky/fetch implementation for
 * browsers, and reading HTTP answers into the client's errors. The Node entry point puts its
 * raw HTTP/1.1 implementation (`node-http.ts`) behind the same interface.
 */
import type { KyInstance } from 'ky';
import { HttpError, NetworkError } from './errors';
import type { HeaderRecord } from './options';
import { parseErrorBody, parseJson, parseRetryAfter } from './parse';

/** An HTTP answer, its body read whole. */
export interface HttpAnswer {
  readonly status: number;
  readonly text: string;
  /** The `Retry-After` header (the one header the client reads), null or absent when none. */
  readonly retryAfter?: string | null;
}

/**
 * POSTs a JSON `body` (`content-type: application/json` is added) and reads the answer as
 * text. Rejects on a network failure, on `signal`'s abort, or after `timeoutMs` when given;
 * any HTTP status resolves. Injectable as `environment.post`.
 */
export type HttpPost = (
  url: string,
  body: string,
  headers: HeaderRecord,
  signal: AbortSignal,
  timeoutMs?: number,
) => Promise<HttpAnswer>;

/** {@link HttpPost} through ky (browsers, and any runtime given its own `fetch`). */
export const kyPost =
  (http: KyInstance): HttpPost =>
  async (url, body, headers, signal, timeoutMs) => {
    const response = await http.post(url, {
      body,
      headers: { 'content-type': 'application/json', ...headers },
      signal,
      timeout: timeoutMs ?? false,
    });
    return answerOf(response, await response.text());
  };

/** A fetch `Response` whose body was read as `text`, as an {@link HttpAnswer}. */
export const answerOf = (response: Response, text: string): HttpAnswer => ({
  status: response.status,
  text,
  retryAfter: response.headers.get('retry-after'),
});

/** The error of a non-200 answer, with the server's code and message when it gave them. */
export function httpError({ status, text, retryAfter }: HttpAnswer, now: number): HttpError {
  const body = parseErrorBody(parseJson(text));
  return new HttpError(
    status,
    body?.code ?? `http_${status}`,
    body?.message ?? `the server answered ${status}`,
    parseRetryAfter(retryAfter ?? null, now),
  );
}

/** A failed request as a `NetworkError`. */
export function networkError(cause: unknown): NetworkError {
  return new NetworkError(
    `request failed: ${cause instanceof Error ? cause.message : String(cause)}`,
    { cause },
  );
}
