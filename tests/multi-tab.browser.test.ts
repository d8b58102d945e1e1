/**
 * In real Chromium, several tabs (pages of one browser context, so one origin) against a real
 * server on loopback: `@cometkit/core/share` (dist/share.global.js over
 * dist/cometkit.global.js). Tabs hold one connection between them on each transport; seven
 * long-polling tabs leave the browser's six connections per host free where plain clients do
 * not; when the leader tab is closed, crashed or navigated away during a stream of messages,
 * every other tab gets every message once and in order; different users do not share.
 * Connection counts are the server's (`stats()`); the figures printed are for the notes.
 */
import { existsSync, readFileSync } from 'node:fs';
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
const bundles = ['cometkit.global.js', 'share.global.js'];

/** A tab: `?share=1&t=longpoll&topic=feed&user=a` (also `&cursor=` or `&rewind=`). `got` holds what its callback received. */
const PAGE = `<!doctype html><meta charset="utf-8"><title>tab</title>
<script src="/cometkit.global.js"></script>
<script src="/share.global.js"></script>
<script>
  const q = new URLSearchParams(location.search);
  window.got = [];
  const options = {
    url: '/api/comet',
    userId: q.get('user') || undefined,
    transports: (q.get('t') || 'websocket,stream,longpoll').split(','),
    wait: 20000,
  };
  window.client = q.get('share')
    ? CometkitShare.createSharedCometClient(options)
    : Cometkit.createCometClient(options);
  const cursor = q.get('cursor');
  const rewind = Number(q.get('rewind')) || undefined;
  client.subscribe(q.get('topic') || 'feed', (data) => got.push(data), cursor ? { cursor } : { rewind });
</script>`;

const hasChromium = existsSync(CHROMIUM);
if (!hasChromium && process.env.CI)
  throw new Error(`${CHROMIUM} is missing: CI must run this test`);

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe.skipIf(!hasChromium)('tabs sharing one connection, in Chromium', () => {
  let comet: CometServer;
  let server: StartedServer;
  let browser: Browser;
  let context: BrowserContext | undefined;
  /** Requests to the endpoint (polls, streams, sends) and WebSocket upgrades. */
  let requests = 0;
  let upgrades = 0;

  beforeAll(async () => {
    ensureBuilt();
    const scripts = new Map(
      bundles.map((name) => [`/${name}`, readFileSync(join(root, 'dist', name))]),
    );
    comet = createCometServer();
    server = await startServer({
      handle(req, res) {
        const path = req.url?.split('?')[0] ?? '';
        const script = scripts.get(path);
        if (path === '/' || path === '/blank') {
          const body = path === '/' ? PAGE : '<!doctype html><title>blank</title>';
          res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(body);
        } else if (script) {
          res.writeHead(200, { 'content-type': 'text/javascript' }).end(script);
        } else if (path === '/ping') {
          res.writeHead(200, { 'content-type': 'text/plain' }).end('pong');
        } else {
          requests++;
          comet.handle(req, res);
        }
      },
      handleUpgrade(req, socket, head) {
        upgrades++;
        comet.handleUpgrade(req, socket, head);
      },
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
    await context?.close();
    context = undefined;
    // Every page is gone: let the server see its connections end.
    await expect
      .poll(
        () => {
          const { held, streams, sockets } = comet.stats();
          return held + streams + sockets;
        },
        { timeout: 15_000 },
      )
      .toBe(0);
  });

  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  /** Opens `count` tabs in one context (one origin, one connection pool). */
  async function openTabs(count: number, query: string): Promise<Page[]> {
    context ??= await browser.newContext();
    const pages: Page[] = [];
    for (let i = 0; i < count; i++) {
      const page = await context.newPage();
      page.on('pageerror', (error) => console.log(`[page error] ${error.message}`));
      await page.goto(`${server.url}/?${query}`);
      pages.push(page);
    }
    return pages;
  }

  const status = (page: Page) =>
    page.evaluate(() =>
      (
        window as never as { client: { getState(): { status: string; share?: string } } }
      ).client.getState(),
    );
  const got = (page: Page) => page.evaluate(() => (window as never as { got: unknown[] }).got);

  async function waitConnected(pages: Page[]) {
    for (const page of pages)
      await page.waitForFunction("client.getState().status === 'connected'", undefined, {
        timeout: 15_000,
      });
  }

  async function leaderOf(pages: Page[]): Promise<Page> {
    let leaders: Page[] = [];
    await expect
      .poll(
        async () => {
          leaders = [];
          for (const page of pages) if ((await status(page)).share === 'leader') leaders.push(page);
          return leaders.length;
        },
        { timeout: 15_000 },
      )
      .toBe(1);
    return leaders[0] as Page;
  }

  /** What the server holds open: held polls, streams and WebSocket connections all count in `held`. */
  const open = () => comet.stats().held;

  for (const transport of ['websocket', 'stream', 'longpoll'] as const) {
    it(`three tabs hold one ${transport} connection between them, and each receives`, async () => {
      const before = { requests, upgrades };
      const pages = await openTabs(3, `share=1&t=${transport}&topic=three-${transport}`);
      await waitConnected(pages);
      await leaderOf(pages);
      await expect.poll(open, { timeout: 15_000 }).toBe(1);
      if (transport === 'websocket') expect(comet.stats().sockets).toBe(1);
      if (transport === 'stream') expect(comet.stats().streams).toBe(1);
      for (const data of ['one', 'two']) await comet.publish(`three-${transport}`, data);
      for (const page of pages)
        await page.waitForFunction('got.length >= 2', undefined, { timeout: 15_000 });
      for (const page of pages) expect(await got(page)).toEqual(['one', 'two']);
      const states = await Promise.all(pages.map(status));
      expect(states.map((state) => state.share).sort()).toEqual(['follower', 'follower', 'leader']);
      console.log(
        `[multi-tab] 3 tabs shared on ${transport}: open at the server ${open()}, requests ${requests - before.requests}, upgrades ${upgrades - before.upgrades}`,
      );
    }, 60_000);

    it(`three tabs without sharing hold three ${transport} connections (today)`, async () => {
      const before = { requests, upgrades };
      const pages = await openTabs(3, `t=${transport}&topic=alone-${transport}`);
      await waitConnected(pages);
      await expect.poll(open, { timeout: 15_000 }).toBe(3);
      console.log(
        `[multi-tab] 3 tabs alone on ${transport}: open at the server ${open()}, requests ${requests - before.requests}, upgrades ${upgrades - before.upgrades}`,
      );
    }, 60_000);
  }

  /** A request of the page's own to the same host: answered, or still queued after `ms`. */
  const ping = (page: Page, ms: number) =>
    page.evaluate(
      (limit) =>
        Promise.race([
          fetch('/ping').then(() => 'answered'),
          new Promise((resolve) => setTimeout(() => resolve('stalled'), limit)),
        ]),
      ms,
    );

  it('seven tabs without sharing on a long-poll-only path: the six held polls stall the page', async () => {
    const pages = await openTabs(7, 't=longpoll&topic=seven-alone');
    // Six held polls take the six connections a browser allows per host; the seventh queues.
    await expect.poll(() => comet.stats().held, { timeout: 20_000 }).toBe(6);
    // Past the handshakes (answered at once): every held poll is in place.
    await sleep(3000);
    expect(comet.stats().held).toBe(6);
    expect(await ping(pages[6] as Page, 3000)).toBe('stalled');
    console.log(`[multi-tab] 7 tabs alone on longpoll: held at the server ${comet.stats().held}`);
  }, 60_000);

  it('seven tabs sharing on a long-poll-only path all receive, over one held poll', async () => {
    const before = requests;
    const pages = await openTabs(7, 'share=1&t=longpoll&topic=seven-shared');
    await waitConnected(pages);
    await leaderOf(pages);
    await expect.poll(() => comet.stats().held, { timeout: 20_000 }).toBe(1);
    expect(await ping(pages[6] as Page, 10_000)).toBe('answered');
    await comet.publish('seven-shared', 'hello');
    for (const page of pages)
      await page.waitForFunction('got.length >= 1', undefined, { timeout: 15_000 });
    for (const page of pages) expect(await got(page)).toEqual(['hello']);
    console.log(
      `[multi-tab] 7 tabs shared on longpoll: held at the server ${comet.stats().held}, poll requests ${requests - before}`,
    );
  }, 90_000);

  const endings: Record<string, (page: Page) => Promise<unknown>> = {
    closed: (page) => page.close(),
    crashed: async (page) => {
      const session = await page.context().newCDPSession(page);
      // The page dies with its session: the call never answers.
      void session.send('Page.crash').catch(() => {});
    },
    'navigated away': (page) => page.goto(`${server.url}/blank`),
  };

  for (const [ending, end] of Object.entries(endings)) {
    for (const transport of ['websocket', 'longpoll'] as const) {
      it(`the leader ${ending} during a stream (${transport}): every other tab gets every message once, in order`, async () => {
        const topic = `handover-${ending.replace(' ', '-')}-${transport}`;
        const pages = await openTabs(3, `share=1&t=${transport}&topic=${topic}`);
        await waitConnected(pages);
        const leader = await leaderOf(pages);
        const others = pages.filter((page) => page !== leader);
        await expect.poll(open, { timeout: 15_000 }).toBe(1);
        const sent: number[] = [];
        let endedAt = 0;
        let handover: Promise<number> | undefined;
        for (let i = 0; i < 40; i++) {
          await comet.publish(topic, i);
          sent.push(i);
          if (i === 12) {
            endedAt = Date.now();
            await end(leader);
            handover = (async () => {
              const deadline = Date.now() + 15_000;
              while (Date.now() < deadline) {
                for (const page of others) {
                  const state = await status(page);
                  if (state.share === 'leader' && state.status === 'connected')
                    return Date.now() - endedAt;
                }
                await sleep(10);
              }
              return Number.NaN;
            })();
          }
          await sleep(20);
        }
        for (const page of others)
          await page.waitForFunction('got.length >= 40', undefined, { timeout: 20_000 });
        for (const page of others) expect(await got(page)).toEqual(sent);
        const ms = await handover;
        expect(await leaderOf(others)).toBeDefined();
        console.log(
          `[multi-tab] leader ${ending} on ${transport}: a new leader connected in ${ms} ms`,
        );
      }, 90_000);
    }
  }

  it('a tab that subscribes from a recent cursor to a topic another tab follows gets what came after it', async () => {
    const [first] = await openTabs(1, 'share=1&t=websocket&topic=from-cursor');
    await waitConnected([first as Page]);
    const ids: string[] = [];
    for (const data of [1, 2, 3]) ids.push((await comet.publish('from-cursor', data)) as string);
    await (first as Page).waitForFunction('got.length >= 3', undefined, { timeout: 15_000 });
    const [second] = await openTabs(1, `share=1&t=websocket&topic=from-cursor&cursor=${ids[0]}`);
    await (second as Page).waitForFunction('got.length >= 2', undefined, { timeout: 15_000 });
    await comet.publish('from-cursor', 4);
    for (const page of [first, second] as Page[])
      await page.waitForFunction(`got.includes(4)`, undefined, { timeout: 15_000 });
    expect(await got(first as Page)).toEqual([1, 2, 3, 4]);
    expect(await got(second as Page)).toEqual([2, 3, 4]);
    expect((await status(second as Page)).share).toBe('follower');
  }, 60_000);

  for (const transport of ['websocket', 'longpoll'] as const) {
    it(`a tab that subscribes with a rewind to a topic another tab follows gets the last messages, then live ones, once (${transport})`, async () => {
      const topic = `rewind-${transport}`;
      for (const data of [1, 2, 3, 4, 5]) await comet.publish(topic, data);
      // The first tab starts the topic on the connection: the server rewinds it.
      const [first] = await openTabs(1, `share=1&t=${transport}&topic=${topic}&rewind=3`);
      await waitConnected([first as Page]);
      await (first as Page).waitForFunction('got.length >= 3', undefined, { timeout: 15_000 });
      await comet.publish(topic, 6);
      await (first as Page).waitForFunction('got.includes(6)', undefined, { timeout: 15_000 });
      // The second follows it already: its rewind comes from what the tabs kept.
      const [second] = await openTabs(1, `share=1&t=${transport}&topic=${topic}&rewind=2`);
      await (second as Page).waitForFunction('got.length >= 2', undefined, { timeout: 15_000 });
      await comet.publish(topic, 7);
      for (const page of [first, second] as Page[])
        await page.waitForFunction('got.includes(7)', undefined, { timeout: 15_000 });
      expect(await got(first as Page)).toEqual([3, 4, 5, 6, 7]);
      expect(await got(second as Page)).toEqual([5, 6, 7]);
      expect((await status(second as Page)).share).toBe('follower');
      expect(open()).toBe(1);
    }, 60_000);
  }

  it('tabs of different users do not share', async () => {
    context = await browser.newContext();
    const [a, b] = [await context.newPage(), await context.newPage()];
    await a.goto(`${server.url}/?share=1&t=websocket&topic=users&user=ada`);
    await b.goto(`${server.url}/?share=1&t=websocket&topic=users&user=bob`);
    await waitConnected([a, b]);
    expect((await status(a)).share).toBe('leader');
    expect((await status(b)).share).toBe('leader');
    await expect.poll(() => comet.stats().sockets, { timeout: 15_000 }).toBe(2);
    // A second browser context (another profile) never shares either.
    const other = await browser.newContext();
    try {
      const c = await other.newPage();
      await c.goto(`${server.url}/?share=1&t=websocket&topic=users&user=ada`);
      await waitConnected([c]);
      expect((await status(c)).share).toBe('leader');
      await expect.poll(() => comet.stats().sockets, { timeout: 15_000 }).toBe(3);
    } finally {
      await other.close();
    }
  }, 60_000);
});
