/**
 * In real Chromium, where the browser decides which cookies and which `Origin` a request
 * carries: a page on another origin (another port of the same host, so the victim's
 * `SameSite=Lax` session cookie does go along) tries to subscribe to the victim's topic with
 * raw `fetch(…, {credentials: 'include'})` and a raw `WebSocket`, on every transport, under
 * every CORS option a server may run with. `authorize` must never let it in, while the
 * victim's own page, with the same cookie, subscribes on every transport.
 */
import { existsSync, readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type CometServer, type CometServerOptions, createCometServer } from '@cometkit/server';
import { type StartedServer, startServer } from '@cometkit/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureBuilt } from './built-core';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const root = fileURLToPath(new URL('../packages/core/', import.meta.url));
const bundle = join(root, 'dist/cometkit.global.js');

interface Page {
  goto(url: string): Promise<unknown>;
  waitForFunction(fn: string, arg?: unknown, options?: { timeout: number }): Promise<unknown>;
  evaluate<T>(fn: string): Promise<T>;
  close(): Promise<void>;
}
interface Context {
  newPage(): Promise<Page>;
}
interface Browser {
  /** One browser profile: its pages share cookies (`browser.newPage()` would not). */
  newContext(): Promise<Context>;
  close(): Promise<void>;
}
interface Chromium {
  launch(options: { executablePath: string; args: string[] }): Promise<Browser>;
}

/** The victim's own page: the script-tag client, same origin, its cookie sent by the browser. */
const VICTIM_PAGE = `<!doctype html><meta charset="utf-8"><title>app</title>
<script src="/cometkit.global.js"></script>
<script>
  window.start = (transport) => {
    window.got = [];
    window.errors = [];
    window.client = Cometkit.createCometClient({ url: '/api/comet', transports: [transport] });
    client.on('error', (e) => errors.push(e.name + ': ' + e.message));
    client.subscribe('user:ann', (data) => got.push(data));
  };
</script>`;

/**
 * The attacker's page: raw requests with the visitor's cookies. Resolves with what it could
 * read of the victim's topic: `subscribed` when an answer gave it a position in `user:ann`.
 */
const EVIL_PAGE = `<!doctype html><meta charset="utf-8"><title>evil</title>
<script>
  window.attack = async (base, transport) => {
    const body = JSON.stringify({ v: 1, sessionGuid: 'evil', topics: ['user:ann'] });
    const init = {
      method: 'POST',
      credentials: 'include',
      headers: { 'content-type': 'application/json' },
      body,
    };
    const opened = (answer) =>
      !!answer && !answer.errors && !!answer.cursors && 'user:ann' in answer.cursors;
    try {
      if (transport === 'longpoll') {
        // A simple request needs no preflight: the server must refuse its type.
        await fetch(base, { ...init, mode: 'no-cors', headers: { 'content-type': 'text/plain' } });
        const answer = await (await fetch(base, init)).json();
        return { subscribed: opened(answer), answer };
      }
      if (transport === 'stream') {
        const response = await fetch(base + '/_stream', init);
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
        let text = '';
        while (!text.includes('\\n\\n')) {
          const chunk = await reader.read();
          if (chunk.done) break;
          text += chunk.value;
        }
        reader.cancel();
        const data = /^data: (.*)$/m.exec(text);
        const answer = data ? JSON.parse(data[1]) : undefined;
        return { subscribed: opened(answer), answer };
      }
      const ws = new WebSocket(base.replace('http', 'ws') + '/_ws');
      const answer = await new Promise((resolve) => {
        ws.onopen = () => ws.send(JSON.stringify({ type: 'poll', ...JSON.parse(body) }));
        ws.onmessage = (event) => resolve(JSON.parse(event.data));
        ws.onclose = (event) => resolve({ closed: event.code });
        setTimeout(() => resolve({ timeout: true }), 3000);
      });
      ws.close();
      return { subscribed: answer.type === 'open' && opened(answer), answer };
    } catch (error) {
      // Blocked by the browser (CORS): nothing read.
      return { subscribed: false, error: String(error) };
    }
  };
</script>`;

const hasChromium = existsSync(CHROMIUM);
if (!hasChromium && process.env.CI)
  throw new Error(`${CHROMIUM} is missing: CI must run this test`);

const TRANSPORTS = ['websocket', 'stream', 'longpoll'] as const;

describe.skipIf(!hasChromium)('a cross-origin page and the victim cookie, in Chromium', () => {
  let victim: StartedServer;
  let evil: StartedServer;
  let browser: Browser;
  let profile: Context;
  let comet: CometServer | undefined;
  /** Requests from the evil origin that reached the server with the session cookie. */
  let evilWithCookie = 0;
  /** Topics `authorize` allowed to a request from the evil origin. */
  let allowedToEvil: string[] = [];

  const cookieSession = (req: IncomingMessage) =>
    /(^|; )session=ann(;|$)/.test(req.headers.cookie ?? '');

  function serve(cors: CometServerOptions['cors']) {
    comet = createCometServer({
      cors,
      authorize: ({ req, topic }) => {
        const allowed = cookieSession(req) && topic === 'user:ann';
        if (allowed && req.headers.origin === evil.url) allowedToEvil.push(topic);
        return allowed || { code: 'unauthorized', message: 'log in first' };
      },
    });
  }
  const seen = (req: IncomingMessage) => {
    if (req.headers.origin === evil.url && cookieSession(req)) evilWithCookie += 1;
  };

  beforeAll(async () => {
    ensureBuilt();
    const script = readFileSync(bundle);
    const page = (res: ServerResponse, html: string) =>
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(html);
    victim = await startServer({
      handle(req, res) {
        seen(req);
        if (req.url === '/login') {
          res.writeHead(200, {
            'content-type': 'text/html; charset=utf-8',
            'set-cookie': 'session=ann; Path=/; HttpOnly; SameSite=Lax',
          });
          res.end('<!doctype html><title>logged in</title>');
        } else if (req.url === '/') page(res, VICTIM_PAGE);
        else if (req.url === '/cometkit.global.js') {
          res.writeHead(200, { 'content-type': 'text/javascript' }).end(script);
        } else comet?.handle(req, res);
      },
      handleUpgrade(req, socket, head) {
        seen(req);
        comet?.handleUpgrade(req, socket, head);
      },
    });
    evil = await startServer({ handle: (_req, res) => page(res, EVIL_PAGE) });
    const require = createRequire(fileURLToPath(import.meta.url));
    const { chromium } = (await import(require.resolve('playwright-core'))) as {
      chromium: Chromium;
    };
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run'],
    });
    // The visitor logs in to the victim's site: the browser keeps its session cookie.
    profile = await browser.newContext();
    const login = await profile.newPage();
    await login.goto(`${victim.url}/login`);
    await login.close();
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await comet?.close();
    await evil?.close();
    await victim?.close();
  });

  const options: [string, () => CometServerOptions['cors']][] = [
    ['no cors option', () => undefined],
    ['cors.origins: [the app]', () => ({ origins: [victim.url] })],
    ['cors.origins: [the app], credentials', () => ({ origins: [victim.url], credentials: true })],
    ["cors.origins: '*'", () => ({ origins: '*' })],
    ['cors.origins: [the attacker] without credentials', () => ({ origins: [evil.url] })],
    ['cors.origins: () => true without credentials', () => ({ origins: () => true })],
  ];

  for (const [name, cors] of options) {
    it(`keeps the attacker out on every transport with ${name}, and lets the victim in`, async () => {
      await comet?.close();
      serve(cors());
      evilWithCookie = 0;
      allowedToEvil = [];
      const attacker = await profile.newPage();
      await attacker.goto(evil.url);
      for (const transport of TRANSPORTS) {
        const result = await attacker.evaluate<{ subscribed: boolean; answer?: unknown }>(
          `attack(${JSON.stringify(`${victim.url}/api/comet`)}, '${transport}')`,
        );
        expect({ transport, ...result }).toMatchObject({ transport, subscribed: false });
      }
      expect(allowedToEvil).toEqual([]);
      await attacker.close();

      // The same cookie works for the victim's own page, on every transport.
      for (const transport of TRANSPORTS) {
        const app = await profile.newPage();
        await app.goto(victim.url);
        await app.evaluate(`start('${transport}')`);
        await app.waitForFunction("client.getState().status === 'connected'", undefined, {
          timeout: 10_000,
        });
        await comet?.publish('user:ann', `for ann over ${transport}`);
        await app.waitForFunction('got.length === 1', undefined, { timeout: 10_000 });
        expect(await app.evaluate('errors')).toEqual([]);
        await app.evaluate('client.close()');
        await app.close();
      }
    }, 60_000);
  }

  it("proves the browser does send the victim's cookie along with the attacker's WebSocket", async () => {
    // Without this, the test above could pass because the cookie never left the browser.
    await comet?.close();
    serve({ origins: '*' });
    evilWithCookie = 0;
    const attacker = await profile.newPage();
    await attacker.goto(evil.url);
    await attacker.evaluate(`attack(${JSON.stringify(`${victim.url}/api/comet`)}, 'websocket')`);
    await attacker.close();
    expect(evilWithCookie).toBeGreaterThan(0);
  }, 30_000);
});
