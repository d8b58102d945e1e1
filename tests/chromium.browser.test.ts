/**
 * In real Chromium: the `<script src>` build (dist/cometkit.global.js) behind a front that
 * refuses WebSocket upgrades falls back to streaming and receives messages. What only a browser
 * does: its own WebSocket (a failed handshake is just an error and a 1006 close), its fetch
 * streams, its localStorage.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type CometServer, createCometServer } from '@cometkit/server';
import { createFront, type Front, type StartedServer, startServer } from '@cometkit/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureBuilt } from './built-core';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const root = fileURLToPath(new URL('../packages/core/', import.meta.url));
const bundle = join(root, 'dist/cometkit.global.js');

/** The part of playwright-core this test uses (a devDependency of this package). */
interface Page {
  goto(url: string): Promise<unknown>;
  waitForFunction(fn: string, arg?: unknown, options?: { timeout: number }): Promise<unknown>;
  evaluate<T>(fn: string): Promise<T>;
}
interface Browser {
  newPage(): Promise<Page>;
  close(): Promise<void>;
}
interface Chromium {
  launch(options: { executablePath: string; args: string[] }): Promise<Browser>;
}

const PAGE = `<!doctype html><meta charset="utf-8"><title>cometkit</title>
<script src="/cometkit.global.js"></script>
<script>
  window.got = [];
  window.diagnostics = [];
  window.client = Cometkit.createCometClient({ url: '/api/comet', openTimeout: 1000 });
  client.on('diagnostic', (d) => diagnostics.push(d));
  client.subscribe('chat', (data) => got.push(data));
</script>`;

/** Only the script tag, with the window's own property names listed before and after it. */
const GLOBALS_PAGE = `<!doctype html><meta charset="utf-8"><title>globals</title>
<script>window.namesBefore = Object.getOwnPropertyNames(window);</script>
<script src="/cometkit.global.js"></script>
<script>
  window.namesAdded = Object.getOwnPropertyNames(window).filter(
    (name) => name !== 'namesBefore' && !namesBefore.includes(name),
  );
</script>`;

const hasChromium = existsSync(CHROMIUM);
if (!hasChromium && process.env.CI)
  throw new Error(`${CHROMIUM} is missing: CI must run this test`);
if (!hasChromium) console.warn(`skipping the Chromium test: ${CHROMIUM} is missing`);

describe.skipIf(!hasChromium)('the IIFE build in Chromium', () => {
  let comet: CometServer;
  let server: StartedServer;
  let front: Front;
  let browser: Browser;

  beforeAll(async () => {
    ensureBuilt();
    const script = readFileSync(bundle);
    comet = createCometServer();
    // One loopback server: the page, the script, and the endpoint (same origin, no CORS).
    server = await startServer({
      handle(req, res) {
        if (req.url === '/') {
          res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(PAGE);
        } else if (req.url === '/globals') {
          res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(GLOBALS_PAGE);
        } else if (req.url === '/cometkit.global.js') {
          res.writeHead(200, { 'content-type': 'text/javascript' }).end(script);
        } else comet.handle(req, res);
      },
      handleUpgrade: (req, socket, head) => comet.handleUpgrade(req, socket, head),
      close: () => comet.close(),
    });
    front = await createFront({ targets: [server.url], refuseUpgrades: true });
    const require = createRequire(fileURLToPath(import.meta.url));
    const { chromium } = (await import(require.resolve('playwright-core'))) as {
      chromium: Chromium;
    };
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--no-first-run',
      ],
    });
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await front?.close();
    await server?.close();
  });

  it('falls back to streaming through a front that refuses upgrades, and receives messages', async () => {
    const page = await browser.newPage();
    await page.goto(front.url);
    await page.waitForFunction("client.getState().status === 'connected'", undefined, {
      timeout: 15_000,
    });
    expect(await page.evaluate('client.getState()')).toEqual({
      status: 'connected',
      transport: 'stream',
    });
    const fallback = await page.evaluate<{ message: string } | undefined>(
      "diagnostics.find((d) => d.code === 'transport-fallback')",
    );
    expect(fallback?.message).toMatch(/WebSocket closed before open/);
    for (const text of ['one', 'two', 'three']) await comet.publish('chat', text);
    await page.waitForFunction('got.length >= 3', undefined, { timeout: 15_000 });
    expect(await page.evaluate('got')).toEqual(['one', 'two', 'three']);
  });

  it('puts exactly one global on window: Cometkit', async () => {
    const page = await browser.newPage();
    await page.goto(`${server.url}/globals`);
    await page.waitForFunction('Array.isArray(window.namesAdded)', undefined, { timeout: 15_000 });
    expect(await page.evaluate('namesAdded')).toEqual(['Cometkit']);
    expect(await page.evaluate('typeof Cometkit.createCometClient')).toBe('function');
  });
});
