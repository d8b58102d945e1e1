/**
 * The Node entry point's {@link HttpPost}: polls and sends on `node:http` / `node:https` with a
 * keep-alive agent, with no ky, `Request`, `Response` or web streams in between. Measured with
 * 1 000 clients in one process (bench/PEERS.md): fetch and ky cost about 1.3 ms of CPU per
 * poll, `http.request` about 0.4, and a fetch swapped in under ky saved only a fifth of it.
 */
import http from 'node:http';
import https from 'node:https';
import type { HttpAnswer, HttpPost } from './http';

/** The node:http {@link HttpPost}, and a way to close its idle connections. */
export interface NodePost extends HttpPost {
  /** Closes the connections it keeps (the client's `close`). */
  destroy(): void;
}

/** The error of a post that took longer than its `timeoutMs`. */
const timedOut = (ms: number) => new Error(`no answer within ${ms} ms`);

/**
 * Makes the node:http {@link HttpPost} of one client. It resolves only once the answer's
 * connection is back in the agent's pool (the request's `close`, which Node emits after the
 * response's `end` and just before it frees the socket): the next poll, made at once, reuses
 * that connection instead of opening a second one.
 *
 * One keep-alive agent per client, not one per process: an agent looks a socket up in an array
 * per host on every request and release, so 1 000 clients of one host on a shared agent cost
 * O(n) each (the profile of 1 000 clients: `removeSocket` alone 5 % of the client's CPU).
 * Idle sockets are unref'd by the agent: they keep no process alive.
 */
export function createNodePost(): NodePost {
  let agents: { http: http.Agent; https: https.Agent } | undefined;
  const post: HttpPost = (url, body, headers, signal, timeoutMs) =>
    new Promise<HttpAnswer>((resolve, reject) => {
      // At the end of the event-loop turn: every answer that arrived in this turn is delivered
      // before any client of the process writes its next request.
      setImmediate(() => {
        if (signal.aborted) {
          reject(signal.reason);
          return;
        }
        agents ??= {
          http: new http.Agent({ keepAlive: true }),
          https: new https.Agent({ keepAlive: true }),
        };
        const secure = url.startsWith('https:');
        const request = (secure ? https : http).request(url, {
          method: 'POST',
          agent: secure ? agents.https : agents.http,
          headers: {
            ...headers,
            'content-type': 'application/json',
            'content-length': Buffer.byteLength(body),
          },
        });
        let failure: unknown;
        let answer: HttpAnswer | undefined;
        const fail = (error: unknown) => {
          failure ??= error;
          request.destroy();
        };
        const onAbort = () => fail(signal.reason);
        signal.addEventListener('abort', onAbort, { once: true });
        const timer =
          timeoutMs === undefined
            ? undefined
            : setTimeout(() => fail(timedOut(timeoutMs)), timeoutMs);
        request.on('response', (response) => {
          let text = '';
          response.setEncoding('utf8');
          response.on('data', (chunk: string) => {
            text += chunk;
          });
          response.on('end', () => {
            const retryAfter = response.headers['retry-after'];
            answer = { status: response.statusCode ?? 0, text, retryAfter };
          });
          response.on('error', fail);
        });
        request.on('error', fail);
        request.on('close', () => {
          signal.removeEventListener('abort', onAbort);
          clearTimeout(timer);
          if (answer !== undefined && failure === undefined) resolve(answer);
          else reject(failure ?? new Error('the connection closed before the answer'));
        });
        request.end(body);
      });
    });
  return Object.assign(post, {
    destroy() {
      agents?.http.destroy();
      agents?.https.destroy();
      agents = undefined;
    },
  });
}
