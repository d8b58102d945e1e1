import { request } from 'node:http';
import express from 'express';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { createMemoryBroker } from '../src/brokers/memory';
import { createCometServer } from '../src/index';
import { poll, post, serve, stopAll } from './helpers';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  await Promise.all(cleanups.splice(0).map((cleanup) => cleanup()));
  await stopAll();
});

/** Sends raw bytes (to test what fetch will not send: lying lengths, chunked bodies). */
function rawRequest(
  url: string,
  options: { method?: string; headers?: Record<string, string>; chunks?: string[] },
): Promise<{ status: number; body: string; headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: options.method ?? 'POST', headers: options.headers });
    req.on('response', (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        body += chunk;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
    });
    req.on('error', reject);
    for (const chunk of options.chunks ?? []) req.write(chunk);
    req.end();
  });
}

describe('createCometServer', () => {
  describe('bad input', () => {
    it.each([
      ['bad JSON', '{"topics": [', 400, 'bad_request', /not valid JSON/],
      ['an empty body', '', 400, 'bad_request', /empty/],
      ['a JSON array', '[]', 400, 'bad_request', /JSON object/],
      ['no topics', { v: 1, sessionGuid: 's' }, 400, 'bad_request', /"topics"/],
      ['empty topics', poll([]), 400, 'bad_request', /at least one/],
      ['a bad topic', poll(['_reserved']), 400, 'bad_request', /letter or digit/],
      ['a topic that is a number', { ...poll([]), topics: [5] }, 400, 'bad_request', /string/],
      ['a bad cursor', poll(['a'], { a: 5 as unknown as string }), 400, 'bad_request', /cursor/],
      ['a negative wait', poll(['a'], {}, -1), 400, 'bad_request', /"wait"/],
      ['an unknown version', { ...poll(['a']), v: 7 }, 400, 'bad_request', /version/],
    ])('answers %s with %i %s and keeps serving', async (_name, body, status, code, message) => {
      const { base } = await serve();
      const answer = await post(base, body);
      expect(answer.status).toBe(status);
      expect(answer.body.error?.code).toBe(code);
      expect(answer.body.error?.message).toMatch(message);
      expect((await post(base, poll(['a']))).status).toBe(200);
    });

    it('answers 400 for more topics than maxTopics', async () => {
      const { base } = await serve({ maxTopics: 2 });
      const answer = await post(base, poll(['a', 'b', 'c']));
      expect(answer.status).toBe(400);
      expect(answer.body.error?.message).toMatch(/at most 2 topics/);
    });

    it('answers 413 too_large for a declared length over bodyLimit', async () => {
      const { base } = await serve({ bodyLimit: 100 });
      const answer = await post(base, poll(['a'.repeat(150)]));
      expect(answer.status).toBe(413);
      expect(answer.body.error?.code).toBe('too_large');
      expect((await post(base, poll(['a']))).status).toBe(200);
    });

    it('answers 413 for a chunked body that grows over bodyLimit', async () => {
      const { base } = await serve({ bodyLimit: 100 });
      const answer = await rawRequest(base, {
        headers: { 'content-type': 'application/json', 'transfer-encoding': 'chunked' },
        chunks: ['{"v":1,"topics":["', 'x'.repeat(80), 'y'.repeat(80), '"]}'],
      });
      expect(answer.status).toBe(413);
      expect(JSON.parse(answer.body).error.code).toBe('too_large');
      expect(answer.headers.connection).toBe('close');
      // That connection is closed (the rest of the body is not read); a new one is served.
      expect((await post(base, poll(['a']))).status).toBe(200);
    });

    it('answers 405 with Allow for a wrong method', async () => {
      const { base } = await serve();
      for (const url of [base, `${base}/chat`]) {
        const answer = await rawRequest(url, { method: 'GET' });
        expect(answer.status).toBe(405);
        expect(answer.headers.allow).toBe('POST, OPTIONS');
        expect(JSON.parse(answer.body).error.code).toBe('method_not_allowed');
      }
      expect((await post(base, poll(['a']))).status).toBe(200);
    });

    it('answers 404 not_found on reserved paths it does not serve', async () => {
      const { base } = await serve();
      for (const path of ['_other', '_streams']) {
        const answer = await post(`${base}/${path}`, poll(['a']));
        expect(answer.status).toBe(404);
        expect(answer.body.error?.code).toBe('not_found');
      }
    });

    it('answers 404 outside its path when used alone, and calls next when given', async () => {
      const { url } = await serve();
      expect((await post(`${url}/elsewhere`, {})).status).toBe(404);
      expect((await post(`${url}/api/comets`, {})).status).toBe(404);
      const comet = createCometServer();
      cleanups.push(() => comet.close());
      let nextCalled = false;
      comet.handle({ url: '/other', headers: {} } as never, {} as never, () => {
        nextCalled = true;
      });
      expect(nextCalled).toBe(true);
    });

    it('never answers a stack trace, even when the broker fails', async () => {
      const broker = createMemoryBroker();
      cleanups.push(() => broker.close());
      const { base } = await serve({
        broker: {
          ...broker,
          read: async () => {
            throw new Error('at Object.<anonymous> (/srv/secret.js:1:1)');
          },
        },
      });
      const answer = await post(base, poll(['a']));
      expect(answer.status).toBe(500);
      expect(answer.body).toEqual({
        error: { code: 'internal', message: 'the server could not handle the request' },
      });
    });
  });

  describe('CORS', () => {
    it('adds no CORS headers by default', async () => {
      const { base } = await serve();
      const answer = await post(base, poll(['a']), { headers: { origin: 'https://evil.test' } });
      expect(answer.headers.get('access-control-allow-origin')).toBeNull();
      const preflight = await rawRequest(base, {
        method: 'OPTIONS',
        headers: { origin: 'https://evil.test', 'access-control-request-method': 'POST' },
      });
      expect(preflight.status).toBe(204);
      expect(preflight.headers['access-control-allow-origin']).toBeUndefined();
    });

    it('echoes an allowed origin and answers its preflight; refuses others', async () => {
      const { base } = await serve({ cors: { origins: ['https://app.test'], credentials: true } });
      const preflight = await rawRequest(`${base}/chat`, {
        method: 'OPTIONS',
        headers: {
          origin: 'https://app.test',
          'access-control-request-method': 'POST',
          'access-control-request-headers': 'content-type, authorization',
        },
      });
      expect(preflight.status).toBe(204);
      expect(preflight.headers).toMatchObject({
        'access-control-allow-origin': 'https://app.test',
        'access-control-allow-credentials': 'true',
        'access-control-allow-methods': 'GET, POST, OPTIONS',
        'access-control-allow-headers': 'content-type, authorization',
        'access-control-max-age': '600',
      });
      const answer = await post(base, poll(['a']), { headers: { origin: 'https://app.test' } });
      expect(answer.headers.get('access-control-allow-origin')).toBe('https://app.test');
      const other = await post(base, poll(['a']), { headers: { origin: 'https://evil.test' } });
      expect(other.headers.get('access-control-allow-origin')).toBeNull();
    });

    it('rejects bad options with a clear TypeError', () => {
      expect(() => createCometServer({ maxWait: -1 })).toThrow(/maxWait/);
      expect(() => createCometServer({ path: 'api' })).toThrow(/path/);
      expect(() => createCometServer({ cors: { origins: 'yes' as never } })).toThrow(/origins/);
    });
  });

  describe('close()', () => {
    it('answers held polls at once with reconnect and their cursors, then 503 with Retry-After', async () => {
      const { comet, base } = await serve({ retryAfter: 2 });
      const { cursors } = (await post(base, poll(['a', 'b']))).body;
      const held = [post(base, poll(['a', 'b'], cursors)), post(base, poll(['a', 'b'], cursors))];
      const legacy = post(base, { topics: ['a'] });
      await expect.poll(() => comet.stats().waiting).toBe(3);
      const closing = comet.close();
      const answers = await Promise.all(held);
      for (const answer of answers) expect(answer.body).toEqual({ cursors, reconnect: true });
      expect((await legacy).body).toEqual({ reconnect: true });
      await closing;
      const later = await post(base, poll(['a']));
      expect(later.status).toBe(503);
      expect(later.headers.get('retry-after')).toBe('2');
      expect(later.body.error?.code).toBe('unavailable');
    });

    it('closes a broker it made, not one it was given', async () => {
      const given = createMemoryBroker();
      cleanups.push(() => given.close());
      const withGiven = createCometServer({ broker: given });
      await withGiven.close();
      await expect(given.publish('a', 1)).resolves.toMatch(/-1$/);
      const own = createCometServer();
      await own.close();
      await expect(own.publish('a', 1)).rejects.toThrow(/closed/);
    });

    it('answers held polls with reconnect when the broker reports an error', async () => {
      const inner = createMemoryBroker();
      cleanups.push(() => inner.close());
      let report: (error: Error) => void = () => {};
      const { comet, base } = await serve({
        broker: {
          ...inner,
          onError(listener) {
            report = listener;
            return () => {};
          },
        },
      });
      const { cursors } = (await post(base, poll(['a']))).body;
      const held = post(base, poll(['a'], cursors));
      await expect.poll(() => comet.stats().waiting).toBe(1);
      report(new Error('connection lost'));
      expect((await held).body).toEqual({ cursors, reconnect: true });
    });
  });

  describe('publish and recent', () => {
    it('refuse a bad topic with a CometServerError', async () => {
      const comet = createCometServer();
      cleanups.push(() => comet.close());
      await expect(comet.publish('', 1)).rejects.toMatchObject({ status: 400 });
      await expect(comet.recent('ok', -1)).rejects.toMatchObject({ code: 'bad_request' });
    });
  });

  describe('abandoned polls', () => {
    it('10 000 polls abandoned by their clients leave no listener, timer or hold behind', async () => {
      const broker = createMemoryBroker();
      cleanups.push(() => broker.close());
      // One session holds them all: each round's holds are counted back out of it.
      const { comet, url } = await serve({ broker, maxHeldPerSession: 500 });
      const { cursors } = (await post(`${url}/api/comet`, poll(['a', 'b']))).body;
      const body = JSON.stringify(poll(['a', 'b'], cursors));
      const timersBefore = process
        .getActiveResourcesInfo()
        .filter((name) => name === 'Timeout').length;
      const batch = 500;
      for (let round = 0; round < 10_000 / batch; round += 1) {
        const requests = Array.from({ length: batch }, () => {
          const req = request(`${url}/api/comet`, {
            method: 'POST',
            agent: false,
            headers: { 'content-type': 'application/json' },
          });
          req.on('error', () => {});
          req.end(body);
          return req;
        });
        await expect.poll(() => comet.stats().waiting, { timeout: 10_000 }).toBe(batch);
        expect(broker.listenerCount()).toBe(batch);
        for (const req of requests) req.destroy();
        await expect.poll(() => comet.stats().held, { timeout: 10_000 }).toBe(0);
        expect(comet.stats().waiting).toBe(0);
      }
      expect(broker.listenerCount()).toBe(0);
      expect(comet.stats().inFlight).toBe(0);
      await expect
        .poll(() => process.getActiveResourcesInfo().filter((name) => name === 'Timeout').length)
        .toBeLessThanOrEqual(timersBefore);
      // And the server still serves.
      expect((await post(`${url}/api/comet`, poll(['a']))).status).toBe(200);
    }, 25_000);
  });

  describe('mounting', () => {
    it('works as Express middleware at the root, under its path, and after express.json()', async () => {
      const comet = createCometServer();
      const app = express();
      app.use(express.json());
      app.use(comet.handle);
      app.get('/health', (_req, res) => {
        res.send('ok');
      });
      const server = app.listen(0, '127.0.0.1');
      await new Promise((resolve) => server.once('listening', resolve));
      cleanups.push(async () => {
        await comet.close();
        server.closeAllConnections();
        await new Promise((resolve) => server.close(resolve));
      });
      const address = server.address();
      if (!address || typeof address === 'string') throw new Error('no port');
      const url = `http://127.0.0.1:${address.port}`;
      expect(await (await fetch(`${url}/health`)).text()).toBe('ok');
      const handshake = await post(`${url}/api/comet`, poll(['a']));
      expect(handshake.status).toBe(200);
      const sent = await post(`${url}/api/comet/a`, { v: 1, sessionGuid: 's', id: 'i', data: 1 });
      expect(sent.body.messageId).toMatch(/-1$/);
      expect((await post(`${url}/api/comet`, '{bad')).status).toBe(400);
    });

    it('works mounted by Express under a prefix of its own (req.baseUrl)', async () => {
      const comet = createCometServer();
      const app = express();
      app.use('/realtime', comet.handle);
      const server = app.listen(0, '127.0.0.1');
      await new Promise((resolve) => server.once('listening', resolve));
      cleanups.push(async () => {
        await comet.close();
        server.closeAllConnections();
        await new Promise((resolve) => server.close(resolve));
      });
      const address = server.address();
      if (!address || typeof address === 'string') throw new Error('no port');
      const url = `http://127.0.0.1:${address.port}`;
      expect((await post(`${url}/realtime`, poll(['a']))).status).toBe(200);
      expect(
        (await post(`${url}/realtime/a`, { v: 1, sessionGuid: 's', id: 'i', data: 1 })).status,
      ).toBe(200);
      expect((await comet.recent('a', 1)).messages).toHaveLength(1);
    });

    it('works in Fastify with its body parsing left to the handler', async () => {
      const comet = createCometServer();
      const app: FastifyInstance = Fastify();
      await app.register(async (scope) => {
        scope.removeAllContentTypeParsers();
        scope.addContentTypeParser('*', (_request, _payload, done) => done(null));
        const handler = (request: FastifyRequest, reply: FastifyReply) => {
          // Fastify stops managing the answer; the comet handler owns the raw request/response.
          reply.hijack();
          comet.handle(request.raw, reply.raw);
        };
        scope.all('/api/comet', handler);
        scope.all('/api/comet/*', handler);
      });
      app.get('/health', async () => 'ok');
      await app.listen({ port: 0, host: '127.0.0.1' });
      cleanups.push(async () => {
        await comet.close();
        await app.close();
      });
      const address = app.server.address();
      if (!address || typeof address === 'string') throw new Error('no port');
      const url = `http://127.0.0.1:${address.port}`;
      const { cursors } = (await post(`${url}/api/comet`, poll(['a']))).body;
      const held = post(`${url}/api/comet`, poll(['a'], cursors));
      await expect.poll(() => comet.stats().waiting).toBe(1);
      const sent = await post(`${url}/api/comet/a`, { v: 1, sessionGuid: 's', id: 'i', data: 'x' });
      expect(sent.status).toBe(200);
      expect((await held).body.messages?.map((m) => m.data)).toEqual(['x']);
      expect((await post(`${url}/api/comet`, '{bad')).body.error?.code).toBe('bad_request');
      expect(await (await fetch(`${url}/health`)).text()).toBe('ok');
    });
  });
});
