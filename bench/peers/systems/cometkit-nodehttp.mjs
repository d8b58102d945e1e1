// Diagnostic: cometkit with defaults, but its client's `environment.fetch` is a small fetch over
// node:http with a keep-alive Agent (maxSockets Infinity) instead of Node's global fetch (undici).
// It measures what an injectable Node fetch (or a Node entry point) would save, through the
// injection point the client already has; ky and the rest of the client are unchanged.
import http from 'node:http';
import base, { startClient } from './cometkit.mjs';

const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity });
const NO_BODY = new Set([101, 204, 205, 304]);

/** A fetch for plain HTTP/1.1 on node:http: enough for cometkit's polls and sends. */
export async function nodeHttpFetch(input, init = {}) {
  const request = input instanceof Request ? input : null;
  const url = request ? request.url : String(input);
  const method = init.method ?? request?.method ?? 'GET';
  const headers = {};
  for (const [k, v] of new Headers(init.headers ?? request?.headers)) headers[k] = v;
  const signal = init.signal ?? request?.signal;
  let body = init.body;
  if (body === undefined && request?.body) body = Buffer.from(await request.arrayBuffer());
  if (typeof body === 'string') body = Buffer.from(body);
  if (body) headers['content-length'] = String(body.length);
  signal?.throwIfAborted();
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers, agent }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const raw = res.rawHeaders;
        const pairs = [];
        for (let i = 0; i < raw.length; i += 2) pairs.push([raw[i], raw[i + 1]]);
        const status = res.statusCode ?? 0;
        resolve(
          new Response(NO_BODY.has(status) ? null : Buffer.concat(chunks), {
            status,
            headers: pairs,
          }),
        );
      });
    });
    req.on('error', reject);
    signal?.addEventListener('abort', () => req.destroy(signal.reason), { once: true });
    req.end(body);
  });
}

export default {
  ...base,
  name: 'cometkit-nodehttp',
  startClient: (url, topics, onMessage) =>
    startClient(url, topics, onMessage, { environment: { fetch: nodeHttpFetch } }),
};
