/** Reading HTTP answers into the client's errors: shared by polls and sends. */
import { HttpError, NetworkError } from './errors';
import { parseErrorBody, parseJson, parseRetryAfter } from './parse';

/** The error of a non-200 answer, with the server's code and message when it gave them. */
export function httpError(response: Response, text: string, now: number): HttpError {
  const body = parseErrorBody(parseJson(text));
  return new HttpError(
    response.status,
    body?.code ?? `http_${response.status}`,
    body?.message ?? `the server answered ${response.status}`,
    parseRetryAfter(response.headers.get('retry-after'), now),
  );
}

/** A failed fetch as a `NetworkError`. */
export function networkError(cause: unknown): NetworkError {
  return new NetworkError(
    `request failed: ${cause instanceof Error ? cause.message : String(cause)}`,
    { cause },
  );
}
