import { createServer, type IncomingMessage, request } from 'node:http';
import express from 'express';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { createCometServer } from '../src/index';
import { poll, post, serve, stopAll } from './helpers';

const sockets: WebSocket[] = [];
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const ws of sockets.splice(0)) ws.terminate();
  await Promise.all(cleanups.splice(0).map((cleanup) => cleanup()));
  await stopAll();
});

type Upgrade =
  | { opened: true; ws: WebSocket }
  | { opened: false; status: number; body: string; contentType: string | undefined };

/** Tries an upgrade with these headers; resolves with the socket or the refusal. */
function upgrade(url: string, headers: Record<string, string> = {}): Promise<Upgrade> {
  const ws = new WebSocket(url, { headers });
  sockets.push(ws);
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve({ opened: true, ws }));
    ws.once('unexpected-response', (_req, res: IncomingMessage) => {
      let body = '';
      res.on('data', (chunk: Buffer) => {
        body += chunk.toString();
      });
      res.on('end', () =>
        resolve({
          opened: false,
          status: res.statusCode ?? 0,
          body,
          contentType: res.headers['content-type'],
        }),
      );
    });
    ws.once('error', reject);
  });
}

/** An open socket answers a ping frame with a pong frame. */
async function pingPong(ws: WebSocket): Promise<void> {
  const frame = new Promise<unknown>((resolve) =>
    ws.once('message', (data) => resolve(JSON.parse(data.toString()))),
  );
  ws.send(JSON.stringify({ type: 'ping' }));
  expect(await frame).toEqual({ type: 'pong' });
}

function expectRefused(result: Upgrade): void {
  expect(result.opened).toBe(false);
  if (result.opened) return;
  expect(result.status).toBe(403);
  expect(result.contentType).toMatch(/^application\/json/);
  expect(JSON.parse(result.body).error.code).toBe('forbidden');
}

/** A POST with raw headers and body (what a cross-site form or `text/plain` fetch sends). */
function rawPost(
  url: string,
  headers: Record<string, string>,
  body: string,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', headers });
    req.on('response', (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        text += chunk;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('cross-site WebSocket hijacking', () => {
  async function wsServer(options: Parameters<typeof serve>[0] = {}) {
    const served = await serve(options);
    const port = served.started.port;
    return { ...served, port, wsUrl: `${served.base.replace('http:', 'ws:')}/_ws` };
  }

  it('accepts an upgrade without Origin by default (not a browser)', async () => {
    const { wsUrl } = await wsServer();
    const result = await upgrade(wsUrl);
    expect(result.opened).toBe(true);
    if (result.opened) await pingPong(result.ws);
  });

  it('accepts a same-origin upgrade (Origin host equals Host) by default', async () => {
    const { wsUrl, port } = await wsServer();
    const result = await upgrade(wsUrl, { origin: `http://127.0.0.1:${port}` });
    expect(result.opened).toBe(true);
    if (result.opened) await pingPong(result.ws);
    // Host names compare case-insensitively, and a default port is the same as none.
    const named = await upgrade(wsUrl, { origin: 'https://App.Example', host: 'app.example:443' });
    expect(named.opened).toBe(true);
  });

  it('refuses another origin with 403 and the JSON error body by default', async () => {
    const { wsUrl, port } = await wsServer();
    expectRefused(await upgrade(wsUrl, { origin: 'https://evil.test' }));
    // Same host name, another port: another origin.
    expectRefused(await upgrade(wsUrl, { origin: `http://127.0.0.1:${port + 1}` }));
    // `Origin: null` (sandboxed frame, file: page).
    expectRefused(await upgrade(wsUrl, { origin: 'null' }));
    // And the server still takes a good one.
    expect((await upgrade(wsUrl, { origin: `http://127.0.0.1:${port}` })).opened).toBe(true);
  });

  it('accepts the origins of cors.origins, and same-origin, and refuses others', async () => {
    const { wsUrl, port } = await wsServer({ cors: { origins: ['https://app.test'] } });
    expect((await upgrade(wsUrl, { origin: 'https://app.test' })).opened).toBe(true);
    expect((await upgrade(wsUrl, { origin: `http://127.0.0.1:${port}` })).opened).toBe(true);
    expect((await upgrade(wsUrl)).opened).toBe(true);
    expectRefused(await upgrade(wsUrl, { origin: 'https://evil.test' }));
  });

  it('accepts any origin with cors.origins "*" and asks a function', async () => {
    const star = await wsServer({ cors: { origins: '*' } });
    expect((await upgrade(star.wsUrl, { origin: 'https://anywhere.test' })).opened).toBe(true);
    const fn = await wsServer({ cors: { origins: (origin) => origin.endsWith('.good.test') } });
    expect((await upgrade(fn.wsUrl, { origin: 'https://a.good.test' })).opened).toBe(true);
    expectRefused(await upgrade(fn.wsUrl, { origin: 'https://a.bad.test' }));
  });
});

describe('Content-Type (CSRF through simple requests)', () => {
  const send = JSON.stringify({ v: 1, sessionGuid: 's', id: 'i-1', data: 'x' });
  const pollBody = JSON.stringify(poll(['a']));

  it.each([
    ['text/plain', 'text/plain'],
    ['a form', 'application/x-www-form-urlencoded'],
    ['multipart', 'multipart/form-data; boundary=x'],
    ['a JSON-like type', 'application/json-patch+json'],
  ])('answers 415 to %s on polls, streams and sends, publishing nothing', async (_name, type) => {
    const { base, comet } = await serve();
    for (const [url, body] of [
      [base, pollBody],
      [`${base}/_stream`, pollBody],
      [`${base}/chat`, send],
    ] as const) {
      const answer = await rawPost(url, { 'content-type': type }, body);
      expect(answer.status).toBe(415);
      const error = JSON.parse(answer.body).error;
      expect(error.code).toBe('unsupported_media_type');
      expect(error.message).toMatch(/Content-Type: application\/json/);
    }
    expect((await comet.recent('chat', 10)).messages).toEqual([]);
    // And it keeps serving.
    expect((await post(base, poll(['a']))).status).toBe(200);
  });

  it('answers 415 to a body without Content-Type', async () => {
    const { base } = await serve();
    const answer = await rawPost(base, {}, pollBody);
    expect(answer.status).toBe(415);
    expect(JSON.parse(answer.body).error.message).toMatch(/got none/);
  });

  it('accepts application/json with parameters, in any case', async () => {
    const { base } = await serve();
    for (const type of ['application/json; charset=utf-8', 'Application/JSON;charset=UTF-8']) {
      expect((await rawPost(base, { 'content-type': type }, pollBody)).status).toBe(200);
    }
    const sent = await rawPost(`${base}/chat`, { 'content-type': 'application/json' }, send);
    expect(sent.status).toBe(200);
  });

  it('judges a body a framework parsed by its Content-Type too', async () => {
    const comet = createCometServer();
    const app = express();
    // A parser that takes text bodies: the comet handler sees `req.body` set already.
    app.use(express.text({ type: 'text/plain' }));
    app.use(express.json());
    app.use(comet.handle);
    const server = createServer(app);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    cleanups.push(async () => {
      await comet.close();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    });
    const address = server.address();
    if (!address || typeof address === 'string') throw new Error('no port');
    const base = `http://127.0.0.1:${address.port}/api/comet`;
    const refused = await rawPost(`${base}/chat`, { 'content-type': 'text/plain' }, send);
    expect(refused.status).toBe(415);
    expect((await comet.recent('chat', 10)).messages).toEqual([]);
    const sent = await rawPost(`${base}/chat`, { 'content-type': 'application/json' }, send);
    expect(sent.status).toBe(200);
    expect((await comet.recent('chat', 10)).messages).toHaveLength(1);
  });
});
