import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import { type AddressInfo, createServer as createTcpServer, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createNodePost, nodeTimers } from '../src/node-http';

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

  it('reads an answer larger than one read of the connection, intact', async () => {
    // Plain connections read into one buffer shared by the process: what the reader keeps
    // between reads must be its own copy.
    const text = 'é€😀-'.repeat(40_000);
    const { url } = await serve((_req, _body, res) => res.end(text));
    const post = createNodePost();
    const answers = await Promise.all(
      [1, 2, 3].map(() => post(url, '{}', {}, new AbortController().signal)),
    );
    for (const answer of answers) expect(answer.text).toBe(text);
  });

  it('closes an idle connection the server sends bytes on, and posts the next on a new one', async () => {
    const sockets: Socket[] = [];
    const { url, stats } = await serve((req, _body, res) => {
      sockets.push(req.socket);
      res.end('{}');
    });
    const post = createNodePost();
    await post(url, '{}', {}, new AbortController().signal);
    // Bytes nobody asked for, while the connection is idle.
    sockets[0]?.write('HTTP/1.1 200 OK\r\ncontent-length: 7\r\n\r\n"stray"');
    await expect.poll(() => sockets[0]?.destroyed).toBe(true);
    const answer = await post(url, '{"n":2}', {}, new AbortController().signal);
    expect(answer.text).toBe('{}');
    expect(stats.connections).toBe(2);
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
  it('reads a chunked answer and still reuses the connection', async () => {
    const { url, stats } = await serve((_req, body, res) => {
      res.write('{"body":');
      res.end(`${JSON.stringify(body)}}`);
    });
    const post = createNodePost();
    for (let round = 0; round < 3; round += 1) {
      const answer = await post(url, '{"n":1}', {}, new AbortController().signal);
      expect(JSON.parse(answer.text)).toEqual({ body: '{"n":1}' });
    }
    expect(stats.connections).toBe(1);
  });

  it('opens a new connection when the server closed the idle one', async () => {
    const { url, stats } = await serve((_req, _body, res) => {
      res.setHeader('connection', 'close');
      res.end('{}');
    });
    const post = createNodePost();
    for (let round = 0; round < 3; round += 1) {
      expect((await post(url, '{}', {}, new AbortController().signal)).status).toBe(200);
    }
    expect(stats.connections).toBe(3);
  });

  it('sends again on a new connection when a reused one closes before any answer', async () => {
    // A raw server: on every connection, answers the first request and closes on the second,
    // as a keep-alive timeout racing the next request does.
    let connections = 0;
    const server = createTcpServer((socket: Socket) => {
      connections += 1;
      let requests = 0;
      socket.on('data', () => {
        requests += 1;
        if (requests === 1) socket.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}');
        else socket.destroy();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/x`;
    try {
      const post = createNodePost();
      const signal = new AbortController().signal;
      expect((await post(url, '{}', {}, signal)).text).toBe('{}');
      expect((await post(url, '{}', {}, signal)).text).toBe('{}');
      expect(connections).toBe(2);
      post.destroy();
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('refuses a header that would inject another, and sends nothing', async () => {
    const { url, stats } = await serve(echo);
    await expect(
      createNodePost()(url, '{}', { auth: 'x\r\nx-admin: 1' }, new AbortController().signal),
    ).rejects.toThrow(/invalid character/);
    expect(stats.requests).toBe(0);
  });

  it('rejects an answer that is not HTTP', async () => {
    const server = createTcpServer((socket: Socket) => {
      socket.resume();
      socket.end('SSH-2.0-OpenSSH_9.2\r\n\r\n');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/x`;
    try {
      await expect(createNodePost()(url, '{}', {}, new AbortController().signal)).rejects.toThrow(
        'not an HTTP/1.x response',
      );
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
  it('posts over TLS, checking the certificate and naming the host (SNI)', async () => {
    const fixture = (name: string) => readFileSync(new URL(`./fixtures/${name}`, import.meta.url));
    let servername: unknown;
    const server = createTlsServer(
      { key: fixture('localhost.key'), cert: fixture('localhost.crt') },
      (req, res) => {
        servername = (req.socket as { servername?: unknown }).servername;
        res.end('{"tls":true}');
      },
    );
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `https://localhost:${(server.address() as AddressInfo).port}/x`;
    const signal = new AbortController().signal;
    try {
      // Self-signed: refused, as any client that checks certificates refuses it.
      await expect(createNodePost()(url, '{}', {}, signal)).rejects.toThrow(/self-signed/);
      const before = process.env.NODE_TLS_REJECT_UNAUTHORIZED;
      process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0';
      try {
        const post = createNodePost();
        expect((await post(url, '{}', {}, signal)).text).toBe('{"tls":true}');
        expect(servername).toBe('localhost');
        post.destroy();
      } finally {
        if (before === undefined) delete process.env.NODE_TLS_REJECT_UNAUTHORIZED;
        else process.env.NODE_TLS_REJECT_UNAUTHORIZED = before;
      }
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});

describe('nodeTimers', () => {
  it('makes a 0 ms timer an immediate and a longer one a timeout, and clears both kinds', async () => {
    const fired: string[] = [];
    const immediate = nodeTimers.setTimeout(() => fired.push('0 ms'), 0);
    const timeout = nodeTimers.setTimeout(() => fired.push('5 ms'), 5);
    expect((immediate as object).constructor.name).toBe('Immediate');
    expect((timeout as object).constructor.name).toBe('Timeout');
    nodeTimers.clearTimeout(nodeTimers.setTimeout(() => fired.push('cleared immediate'), 0));
    nodeTimers.clearTimeout(nodeTimers.setTimeout(() => fired.push('cleared timeout'), 5));
    nodeTimers.clearTimeout(undefined);
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect(fired).toEqual(['0 ms', '5 ms']);
  });
});
