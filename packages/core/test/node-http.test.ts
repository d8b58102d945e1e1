import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createNodePost } from '../src/node-http';

type Handler = (req: IncomingMessage, body: string, res: ServerResponse) => void;

const servers: Server[] = [];
afterEach(async () => {
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

/** A plain node:http server on loopback that counts the TCP connections it accepts. */
async function serve(handler: Handler) {
  const stats = { connections: 0, requests: 0 };
  const server = createServer((req, res) => {
    stats.requests += 1;
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => {
      body += chunk;
    });
    req.on('end', () => handler(req, body, res));
  });
  server.on('connection', () => {
    stats.connections += 1;
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/x`, stats };
}

const echo: Handler = (req, body, res) => {
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify({ body, type: req.headers['content-type'], auth: req.headers.auth }));
};

describe('createNodePost', () => {
  it('posts the body as JSON with the given headers and reads the answer as text', async () => {
    const { url } = await serve(echo);
    const answer = await createNodePost()(
      url,
      '{"a":"é"}',
      { auth: 't' },
      new AbortController().signal,
    );
    expect(answer.status).toBe(200);
    expect(JSON.parse(answer.text)).toEqual({
      body: '{"a":"é"}',
      type: 'application/json',
      auth: 't',
    });
  });

  it('resolves any status with its Retry-After header', async () => {
    const { url } = await serve((_req, _body, res) => {
      res.writeHead(429, { 'retry-after': '3' });
      res.end('{"error":{"code":"rate_limited","message":"slow down"}}');
    });
    const answer = await createNodePost()(url, '{}', {}, new AbortController().signal);
    expect(answer).toMatchObject({ status: 429, retryAfter: '3' });
    expect(answer.text).toContain('rate_limited');
  });

  it('decodes multi-byte text split across chunks', async () => {
    const text = 'é€😀'.repeat(4_000);
    const { url } = await serve((_req, _body, res) => {
      const bytes = Buffer.from(text);
      // Cut inside a character on purpose.
      res.write(bytes.subarray(0, 1001));
      res.end(bytes.subarray(1001));
    });
    expect((await createNodePost()(url, '{}', {}, new AbortController().signal)).text).toBe(text);
  });

  it('sends every post of a client, one after the other, on one TCP connection', async () => {
    const { url, stats } = await serve(echo);
    const post = createNodePost();
    for (let round = 0; round < 20; round += 1) {
      // The next request is made at once, as the client re-polls on an answer.
      await post(url, '{}', {}, new AbortController().signal);
    }
    expect(stats.requests).toBe(20);
    expect(stats.connections).toBe(1);
  });

  it('rejects with the signal reason when aborted, and drops the request', async () => {
    const held: ServerResponse[] = [];
    const { url } = await serve((_req, _body, res) => held.push(res));
    const controller = new AbortController();
    const pending = createNodePost()(url, '{}', {}, controller.signal);
    await expect.poll(() => held.length).toBe(1);
    const reason = new Error('stop');
    controller.abort(reason);
    await expect(pending).rejects.toBe(reason);
    await expect.poll(() => held[0]?.destroyed).toBe(true);
  });

  it('rejects at once when the signal was aborted before', async () => {
    const { stats, url } = await serve(echo);
    const controller = new AbortController();
    controller.abort(new Error('before'));
    await expect(createNodePost()(url, '{}', {}, controller.signal)).rejects.toThrow('before');
    expect(stats.requests).toBe(0);
  });

  it('rejects after timeoutMs without an answer', async () => {
    const { url } = await serve(() => {});
    await expect(createNodePost()(url, '{}', {}, new AbortController().signal, 50)).rejects.toThrow(
      'no answer within 50 ms',
    );
  });

  it('rejects when the server drops the connection before answering', async () => {
    const { url } = await serve((req) => req.socket.destroy());
    await expect(createNodePost()(url, '{}', {}, new AbortController().signal)).rejects.toThrow();
  });

  it('rejects a refused connection', async () => {
    const { url } = await serve(echo);
    const closed = servers.pop() as Server;
    await new Promise((resolve) => closed.close(resolve));
    await expect(createNodePost()(url, '{}', {}, new AbortController().signal)).rejects.toThrow(
      /ECONNREFUSED/,
    );
  });
});
