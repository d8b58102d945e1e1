/**
 * A page reload in real Chromium with `persistCursors` (the `<script src>` build, driven by
 * playwright-core): on every transport the reloaded page continues right after the last message
 * the previous page delivered, with nothing lost or repeated, including messages published while
 * the page was reloading. A control without `persistCursors` shows those messages are lost.
 *
 * "While reloading" is made deterministic: on the reload the server holds back the client
 * script. Its request means the new document has committed (the old page and its connection are
 * gone) and the new client does not exist yet; the test publishes then, and only then releases
 * the script. The page records what it receives in `sessionStorage`, with its load number, so the
 * record survives the reload.
 */
import { existsSync, readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type CometServer, createCometServer } from '@cometkit/server';
import { type StartedServer, startServer } from '@cometkit/test-utils';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ensureBuilt } from './built-core';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const root = fileURLToPath(new URL('../packages/core/', import.meta.url));
const bundle = join(root, 'dist/cometkit.global.js');

/**
 * The client page: options from the query; every message received is appended to
 * `sessionStorage.got` as `[load, data]`, `load` counting the page loads of this tab.
 */
const PAGE = `<!doctype html><meta charset="utf-8"><title>reload</title>
<script src="/cometkit.global.js"></script>
<script>
  const query = new URLSearchParams(location.search);
  const load = Number(sessionStorage.getItem('loads') || 0) + 1;
  sessionStorage.setItem('loads', String(load));
  window.client = Cometkit.createCometClient({
    transports: [query.get('t')],
    persistCursors: query.get('persist') === '1',
  });
  client.subscribe('chat', (data) => {
    const got = JSON.parse(sessionStorage.getItem('got') || '[]');
    got.push([load, data]);
    sessionStorage.setItem('got', JSON.stringify(got));
  });
</script>`;

declare const client: { getState(): { status: string; transport?: string } };

/** What the tab received so far, as `[load, data]` pairs, across its loads. */
const received = (page: Page) =>
  page.evaluate(() => JSON.parse(sessionStorage.getItem('got') || '[]') as [number, number][]);

const hasChromium = existsSync(CHROMIUM);
if (!hasChromium && process.env.CI)
  throw new Error(`${CHROMIUM} is missing: CI must run this test`);

describe.skipIf(!hasChromium)('a page reload in Chromium', () => {
  let comet: CometServer;
  let server: StartedServer;
  let browser: Browser;
  let context: BrowserContext;
  /** While true, requests for the client script are held in `heldScripts`. */
  let holdScript = false;
  let heldScripts: ServerResponse[] = [];
  let script: Buffer;

  const sendScript = (res: ServerResponse) =>
    res
      .writeHead(200, { 'content-type': 'text/javascript', 'cache-control': 'no-store' })
      .end(script);

  beforeAll(async () => {
    ensureBuilt();
    script = readFileSync(bundle);
    comet = createCometServer();
    const handle = (req: IncomingMessage, res: ServerResponse) => {
      const path = req.url?.split('?')[0];
      if (path === '/') {
        res
          .writeHead(200, {
            'content-type': 'text/html; charset=utf-8',
            'cache-control': 'no-store',
          })
          .end(PAGE);
      } else if (path === '/cometkit.global.js') {
        if (holdScript) heldScripts.push(res);
        else sendScript(res);
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
    holdScript = false;
    for (const res of heldScripts) sendScript(res);
    heldScripts = [];
    await context?.close();
  });

  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  const connected = (page: Page, transport: string) =>
    page.waitForFunction(
      (name) => client.getState().status === 'connected' && client.getState().transport === name,
      transport,
      { timeout: 15_000 },
    );

  /** Until the tab has received `data` (in any load). */
  const receivedData = (page: Page, data: number) =>
    page.waitForFunction((n) => sessionStorage.getItem('got')?.includes(`,${n}]`), data, {
      timeout: 15_000,
    });

  /**
   * Opens the page, publishes 1..5 and waits for them, reloads; publishes 6 and 7 while the
   * reloaded page has no client yet, 8 once its script ran (with `persist`, before it is
   * connected; without, after: the control loses only 6 and 7), 9 and 10 once it is connected.
   * Returns what each load received.
   */
  async function reloadAcross(transport: string, persist: boolean) {
    context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${server.url}/?t=${transport}&persist=${persist ? 1 : 0}`);
    await connected(page, transport);
    for (let n = 1; n <= 5; n++) await comet.publish('chat', n);
    await receivedData(page, 5);

    holdScript = true;
    const reloading = page.reload({ timeout: 15_000 });
    // The new document asked for its script: the old page is gone, the new client not made.
    await expect.poll(() => heldScripts.length, { timeout: 15_000 }).toBe(1);
    await comet.publish('chat', 6);
    await comet.publish('chat', 7);
    holdScript = false;
    for (const res of heldScripts.splice(0)) sendScript(res);
    await reloading;
    // Published before the new client is connected: only a persisted cursor brings it.
    if (persist) await comet.publish('chat', 8);
    await connected(page, transport);
    if (!persist) await comet.publish('chat', 8);
    await comet.publish('chat', 9);
    await comet.publish('chat', 10);
    // Delivery on one topic is in order: a repeat or a late 6 or 7 would come before 10.
    await receivedData(page, 10);
    const got = await received(page);
    const saved = await page.evaluate(() =>
      Object.keys(sessionStorage).filter((key) => key.startsWith('cometkit:cursors:')),
    );
    return {
      first: got.filter(([load]) => load === 1).map(([, data]) => data),
      second: got.filter(([load]) => load === 2).map(([, data]) => data),
      loads: new Set(got.map(([load]) => load)),
      saved,
    };
  }

  for (const transport of ['websocket', 'stream', 'longpoll']) {
    it(`${transport}: with persistCursors, the reloaded page continues with the messages published during the reload, nothing lost or repeated`, async () => {
      const { first, second, loads, saved } = await reloadAcross(transport, true);
      expect(loads).toEqual(new Set([1, 2]));
      expect(first).toEqual([1, 2, 3, 4, 5]);
      expect(second).toEqual([6, 7, 8, 9, 10]);
      expect([...first, ...second]).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
      expect(saved).toHaveLength(1);
    }, 60_000);
  }

  it('without persistCursors, the messages published during the reload are lost', async () => {
    const { first, second, saved } = await reloadAcross('websocket', false);
    expect(first).toEqual([1, 2, 3, 4, 5]);
    expect(second).toEqual([8, 9, 10]);
    expect(saved).toEqual([]);
  }, 60_000);
});
