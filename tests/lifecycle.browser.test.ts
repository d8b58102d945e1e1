/**
 * The client through the page lifecycle in real Chromium (the `<script src>` build, driven by
 * playwright-core over the DevTools protocol): the back/forward cache on every transport, a
 * frozen tab, and a long timer gap.
 *
 * How each freeze is made real, and proved:
 * - Back/forward cache: a real navigation away and `goBack()`, with playwright's default
 *   `--disable-back-forward-cache` removed. Chromium itself fires `pagehide` (persisted),
 *   `freeze`, then `resume`, `pageshow` (persisted) on the way back; the page records them and a
 *   `setInterval` counter, which must not advance while the page is in the cache.
 * - A frozen tab: `Page.setWebLifecycleState({state: 'frozen'})` is accepted but ignored by this
 *   headless Chromium (the counter keeps advancing; checked first, and used if it ever works).
 *   Otherwise the page gets the `freeze`/`resume` events dispatched on its document and its
 *   JavaScript is stopped for real between them with `Debugger.pause`: no timer, no callback
 *   runs, the counter stops, while the server keeps publishing.
 * - A long timer gap (a sleeping machine, a throttled hidden tab): `Debugger.pause` alone, no
 *   event: the client's watchdog comes due while nothing runs and fires late on resume.
 */
import { existsSync, readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type CometServer, createCometServer } from '@cometkit/server';
import { type StartedServer, startServer } from '@cometkit/test-utils';
import type { Browser, BrowserContext, CDPSession, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ensureBuilt } from './built-core';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const root = fileURLToPath(new URL('../packages/core/', import.meta.url));
const bundle = join(root, 'dist/cometkit.global.js');

/** The client page: options from the query, and a record of what the page went through. */
const PAGE = `<!doctype html><meta charset="utf-8"><title>lifecycle</title>
<script src="/cometkit.global.js"></script>
<script>
  const query = new URLSearchParams(location.search);
  window.got = [];
  window.diagnostics = [];
  window.lifecycle = [];
  window.ticks = 0;
  setInterval(() => ticks++, 50);
  for (const type of ['freeze', 'resume'])
    document.addEventListener(type, () => lifecycle.push(type + '@' + ticks));
  addEventListener('pagehide', (e) => lifecycle.push('pagehide:' + e.persisted + '@' + ticks));
  addEventListener('pageshow', (e) => lifecycle.push('pageshow:' + e.persisted + '@' + ticks));
  window.client = Cometkit.createCometClient({
    url: query.get('url') || '/api/comet',
    transports: query.get('t').split(','),
    watchdogGrace: Number(query.get('grace') || 10000),
  });
  client.on('diagnostic', (d) => diagnostics.push(d));
  client.subscribe('chat', (data) => got.push(data));
</script>`;

const codes = (page: Page) => page.evaluate(() => diagnostics.map((d) => d.code));
declare const diagnostics: { code: string; detail?: Record<string, unknown> }[];
declare const got: unknown[];
declare const lifecycle: string[];
declare const ticks: number;
declare const client: { getState(): { status: string; transport?: string } };

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const hasChromium = existsSync(CHROMIUM);
if (!hasChromium && process.env.CI)
  throw new Error(`${CHROMIUM} is missing: CI must run this test`);

describe.skipIf(!hasChromium)('the page lifecycle in Chromium', () => {
  let comet: CometServer;
  let server: StartedServer;
  let browser: Browser;
  let context: BrowserContext;
  /** Streams opened on the stalling endpoint (it sends `open` and then nothing). */
  let stalled = 0;

  beforeAll(async () => {
    ensureBuilt();
    const script = readFileSync(bundle);
    comet = createCometServer();
    const handle = (req: IncomingMessage, res: ServerResponse) => {
      const path = req.url?.split('?')[0];
      if (path === '/' || path === '/away') {
        const body = path === '/' ? PAGE : '<!doctype html><title>away</title>away';
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(body);
      } else if (path === '/cometkit.global.js') {
        res.writeHead(200, { 'content-type': 'text/javascript' }).end(script);
      } else if (path === '/stall/_stream') {
        stalled++;
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.write(`event: open\ndata: {"cursors":{},"timings":{"heartbeat":1000}}\n\n`);
      } else comet.handle(req, res);
    };
    server = await startServer({
      handle,
      handleUpgrade: (req, socket, head) => comet.handleUpgrade(req, socket, head),
      close: () => comet.close(),
    });
    const require = createRequire(fileURLToPath(import.meta.url));
    const { chromium } = (await import(require.resolve('playwright-core'))) as {
      chromium: { launch(options: object): Promise<Browser> };
    };
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      // Playwright turns the back/forward cache off by default; this test needs it.
      ignoreDefaultArgs: ['--disable-back-forward-cache'],
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--no-first-run',
      ],
    });
  }, 120_000);

  afterEach(async () => {
    await context?.close();
  });

  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  /** A fresh context (no remembered transport), the client page open and connected. */
  async function open(query: string, transport: string): Promise<Page> {
    context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${server.url}/?${query}`);
    await page.waitForFunction(
      (name) => client.getState().status === 'connected' && client.getState().transport === name,
      transport,
      { timeout: 15_000 },
    );
    return page;
  }

  /** Until the server holds nothing for any client (no poll, stream or socket). */
  async function serverHoldsNothing() {
    await expect
      .poll(() => {
        const { held, sockets } = comet.stats();
        return held + sockets;
      })
      .toBe(0);
  }

  for (const transport of ['websocket', 'stream', 'longpoll']) {
    it(`${transport}: releases the connection entering the back/forward cache, and catches up on restore with nothing lost or repeated`, async () => {
      const page = await open(`t=${transport}`, transport);
      await comet.publish('chat', 'one');
      await page.waitForFunction(() => got.length === 1);
      await page.goto(`${server.url}/away`);
      // No held request or socket keeps the page out of the cache.
      await serverHoldsNothing();
      await comet.publish('chat', 'two');
      await comet.publish('chat', 'three');
      await sleep(500);
      await page.goBack({ waitUntil: 'commit' });
      await page.waitForFunction(() => got.length >= 3, undefined, { timeout: 15_000 });
      expect(await page.evaluate(() => got)).toEqual(['one', 'two', 'three']);
      // Restored from the cache, frozen while in it: the browser's own events, in order, and the
      // counter did not move between freeze and resume.
      const events = await page.evaluate(() => lifecycle);
      expect(events.map((e) => e.split('@')[0])).toEqual([
        'pageshow:false',
        'pagehide:true',
        'freeze',
        'resume',
        'pageshow:true',
      ]);
      const at = (name: string) => events.find((e) => e.startsWith(name))?.split('@')[1];
      expect(at('resume')).toBe(at('freeze'));
      const reasons = await page.evaluate(
        () =>
          (
            performance.getEntriesByType('navigation')[0] as PerformanceEntry & {
              notRestoredReasons?: unknown;
            }
          ).notRestoredReasons ?? null,
      );
      expect(reasons).toBeNull();
      expect(await codes(page)).toEqual(expect.arrayContaining(['page-suspended', 'page-resumed']));
      const state = await page.evaluate(() => client.getState());
      expect(state).toEqual({ status: 'connected', transport });
    }, 30_000);
  }

  it('a frozen tab ends its held poll and catches up on resume', async () => {
    const page = await open('t=longpoll', 'longpoll');
    const cdp: CDPSession = await context.newCDPSession(page);
    await comet.publish('chat', 'one');
    await page.waitForFunction(() => got.length === 1);
    // The real freeze first: this headless Chromium accepts it and does not freeze (the
    // counter moves on); when it does not, the events plus Debugger.pause below do it.
    const before = await page.evaluate(() => ticks);
    await cdp.send('Page.setWebLifecycleState', { state: 'frozen' });
    await sleep(500);
    const frozenForReal = (await page.evaluate(() => ticks)) === before;
    await cdp.send('Page.setWebLifecycleState', { state: 'active' });
    if (!frozenForReal) await page.evaluate(() => document.dispatchEvent(new Event('freeze')));
    await serverHoldsNothing();
    await cdp.send('Debugger.enable');
    const beforePause = await page.evaluate(() => ticks);
    await cdp.send('Debugger.pause');
    const pausedAt = Date.now();
    await comet.publish('chat', 'two');
    await sleep(1500);
    await cdp.send('Debugger.resume');
    const pausedMs = Date.now() - pausedAt;
    const afterPause = await page.evaluate(() => ticks);
    if (!frozenForReal) await page.evaluate(() => document.dispatchEvent(new Event('resume')));
    await page.waitForFunction(() => got.length >= 2, undefined, { timeout: 15_000 });
    expect(await page.evaluate(() => got)).toEqual(['one', 'two']);
    // The page's timers really stopped: a 50 ms interval ran far fewer times than the pause allows.
    expect(afterPause - beforePause).toBeLessThan(pausedMs / 50 / 3);
    expect(await codes(page)).toEqual(expect.arrayContaining(['page-suspended', 'page-resumed']));
  }, 30_000);

  it('a watchdog that fired late after a long gap re-opens the stream without demoting it', async () => {
    stalled = 0;
    // Silence limit: 2 x the announced 1 s heartbeat + 500 ms grace = 2.5 s.
    const page = await open('t=stream,longpoll&url=/stall&grace=500', 'stream');
    const cdp = await context.newCDPSession(page);
    await cdp.send('Debugger.enable');
    await cdp.send('Debugger.pause');
    await sleep(6000);
    await cdp.send('Debugger.resume');
    await expect.poll(() => stalled).toBe(2);
    const seen = await codes(page);
    expect(seen).toContain('timer-late');
    expect(seen).not.toContain('transport-demoted');
    // The same watchdog, on time, still demotes a stream that is really silent.
    await page.waitForFunction(
      () => diagnostics.some((d) => d.code === 'transport-demoted'),
      undefined,
      { timeout: 15_000 },
    );
  }, 30_000);
});
