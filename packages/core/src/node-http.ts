/**
 * The Node entry point's {@link HttpPost}: polls and sends on `node:http` / `node:https` with a
 * keep-alive agent, with no ky, `Request`, `Response` or web streams in between. Measured with
 * 1 000 clients in one process (bench/PEERS.md): fetch and ky cost about 1.3 ms of CPU per
 * poll, `http.request` about 0.4, and a fetch swapped in under ky saved only a fifth of it.
 */
import http from 'node:http';
import https from 'node:https';
import type { HttpAnswer, HttpPost } from './http';

// One agent per scheme for every client of the process: a poll or send takes any idle
// connection to its host. Idle sockets are unref'd by the agent: they keep no process alive.
let agents: { http: http.Agent; https: https.Agent } | undefined;

/** The error of a post that took longer than its `timeoutMs`. */
const timedOut = (ms: number) => new Error(`no answer within ${ms} ms`);

/**
 * Makes the node:http {@link HttpPost}. It resolves only once the answer's connection is back
 * in the agent's pool (the request's `close`, which Node emits after the response's `end` and
 * just before it frees the socket): the next poll, made at once, reuses that connection
 * instead of opening a second one.
 */
export function createNodePost(): HttpPost {
  return (url, body, headers, signal, timeoutMs) =>
    new Promise<HttpAnswer>((resolve, reject) => {
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
}
