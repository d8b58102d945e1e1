/**
 * The browser end-to-end suite, the same for each of the three UIs: it drives them only through
 * the `data-testid`s and query parameters of examples/CHAT.md. Each UI's test file calls
 * {@link chatSuite}; each test starts its own demo on free ports.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { startDemo } from '../server.mjs';

/** Debian's Chromium; `npx playwright install` is not used. */
export const CHROMIUM = '/usr/bin/chromium';
const LAUNCH_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

const repo = (path: string) => fileURLToPath(new URL(`../../../${path}`, import.meta.url));
/** Kept by CI as an artifact (gitignored). */
const SCREENSHOTS = repo('test-results/demo');

/** One of the three UIs and the file its build must have produced. */
export interface Ui {
  id: 'script-tag' | 'react' | 'angular';
  /** The label the UI shows next to its title. */
  label: string;
  /** Where the demo serves it. */
  path: string;
  /** A file the UI cannot work without (repository-relative) and how to make it. */
  needs: { file: string; how: string };
}

export const UIS: Record<Ui['id'], Ui> = {
  'script-tag': {
    id: 'script-tag',
    label: 'Script tag',
    path: '/script-tag/',
    needs: { file: 'packages/core/dist/cometkit.global.js', how: 'pnpm build' },
  },
  react: {
    id: 'react',
    label: 'React',
    path: '/react/',
    needs: {
      file: 'examples/react-chat/dist/index.html',
      how: 'pnpm build && pnpm build:examples',
    },
  },
  angular: {
    id: 'angular',
    label: 'Angular',
    path: '/angular/',
    needs: {
      file: 'examples/angular-chat/dist/browser/index.html',
      how: 'pnpm build && pnpm build:examples',
    },
  },
};

type Via = 'direct' | 'front';
type Role = 'agent' | 'customer';
interface Person {
  name: string;
  role: Role;
}

const ANN: Person = { name: 'Ann', role: 'agent' };
const BOB: Person = { name: 'Bob', role: 'customer' };
const ERROR_TEXT = 'text must be 1 to 2000 characters';

/** Waits for a condition, never for a fixed time. */
const poll = <T>(read: () => Promise<T> | T) =>
  expect.poll(read, { timeout: 20_000, interval: 50 });

const texts = (page: Page) =>
  page.getByTestId('messages').getByTestId('message').getByTestId('message-text').allTextContents();

/** Waits until the page shows exactly `expected` as its messages, in this order. */
async function expectMessages(page: Page, expected: string[]): Promise<void> {
  await poll(() => texts(page)).toEqual(expected);
}

/** Whether the message list shows its end (scrolled to the newest line). */
const atEnd = (page: Page) =>
  page
    .getByTestId('messages')
    .evaluate((list) => list.scrollHeight - list.scrollTop - list.clientHeight <= 2);

/** Whether the message list is taller than its box, so that scrolling means something. */
const overflows = (page: Page) =>
  page.getByTestId('messages').evaluate((list) => list.scrollHeight > list.clientHeight + 100);

/** A chat line as the server publishes it, for filling a room from the test. */
const line = (person: Person, text: string) => ({ ...person, text, sentAt: Date.now() });

/** Writes `text` and sends it with Enter or the send button. */
async function send(page: Page, text: string, how: 'enter' | 'click' = 'enter'): Promise<void> {
  const input = page.getByTestId('input');
  await input.fill(text);
  if (how === 'enter') await input.press('Enter');
  else await page.getByTestId('send').click();
}

/**
 * Defines the suite for one UI. Fails (never skips) when the UI's build is missing; skips with
 * a message when Chromium is missing, except under CI where that fails too.
 */
export function chatSuite(ui: Ui): void {
  const haveChromium = existsSync(CHROMIUM);
  const ci = !!process.env.CI && !['0', 'false'].includes(process.env.CI);
  if (!haveChromium && !ci) {
    console.warn(
      `[e2e] ${ui.id}: SKIPPED, ${CHROMIUM} not found (Debian: apt-get install chromium). Under CI this fails.`,
    );
  }
  const suite = haveChromium || ci ? describe : describe.skip;

  suite(`the ${ui.id} chat in Chromium`, () => {
    let browser: Browser | undefined;

    beforeAll(async () => {
      mkdirSync(SCREENSHOTS, { recursive: true });
      if (haveChromium) {
        browser = await chromium.launch({ executablePath: CHROMIUM, args: LAUNCH_ARGS });
      }
    });

    afterAll(async () => {
      await browser?.close();
    });

    /**
     * Starts a demo for this test and gives a way to open pages as people; everything is closed
     * when the test ends. Uncaught page errors and dialogs (an `alert` from injected HTML) fail
     * the test at its end.
     */
    async function setup(via: Via) {
      // Checked in each test, so each one fails (a failing beforeAll reports them as skipped).
      if (!existsSync(repo(ui.needs.file))) {
        throw new Error(
          `${ui.needs.file} is missing: the ${ui.id} UI is not built. Run \`${ui.needs.how}\` first (CI runs \`pnpm build:examples\` before the tests).`,
        );
      }
      if (!browser) {
        throw new Error(
          `${CHROMIUM} is missing: install Debian's chromium (apt-get install chromium). Browser tests do not skip under CI.`,
        );
      }
      const cleanups: (() => Promise<unknown>)[] = [];
      onTestFinished(async () => {
        for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {});
      });
      const demo = await startDemo({ port: 0, frontPort: 0 });
      cleanups.push(() => demo.close());
      const base: string = via === 'direct' ? demo.url : demo.frontUrl;
      const problems: string[] = [];

      /**
       * Page errors, console errors and HTTP errors (a favicon 404 included) become problems;
       * through the front, the browser's own log of the refused WebSocket handshake is the
       * expected story, not a problem.
       */
      const watch = (page: Page, who: string) => {
        page.on('pageerror', (error) => problems.push(`${who}: ${error.message}`));
        page.on('console', (message) => {
          if (message.type() !== 'error') return;
          const text = message.text();
          if (via === 'front' && /WebSocket connection to .* failed/.test(text)) return;
          if (allowed.some((pattern) => pattern.test(text))) return;
          problems.push(`${who}: console error "${text}"`);
        });
        page.on('response', (response) => {
          if (response.status() >= 400 && !allowed.some((p) => p.test(response.url()))) {
            problems.push(`${who}: ${response.status()} for ${response.url()}`);
          }
        });
      };
      const allowed: RegExp[] = [];

      const address = (room: string, person?: Person) => {
        const url = new URL(ui.path, base);
        url.searchParams.set('room', room);
        if (person) {
          url.searchParams.set('name', person.name);
          url.searchParams.set('role', person.role);
        }
        return url.href;
      };

      /** A person in their own browser context (their own storage), in `room`. */
      async function open(room: string, person: Person, join: 'query' | 'form' = 'query') {
        if (!browser) throw new Error('no browser');
        const context = await browser.newContext({ viewport: { width: 900, height: 720 } });
        cleanups.push(() => context.close());
        const page = await context.newPage();
        watch(page, person.name);
        page.on('dialog', (dialog) => {
          problems.push(`${person.name}: a ${dialog.type()} dialog "${dialog.message()}"`);
          void dialog.dismiss();
        });
        if (join === 'query') {
          await page.goto(address(room, person));
        } else {
          await page.goto(address(room));
          await page.getByTestId('join-form').waitFor();
          await page.getByTestId('name-input').fill(person.name);
          await page.getByTestId('role-select').selectOption(person.role);
          await page.getByTestId('join').click();
        }
        // Joined: the form is gone (removed or hidden), the chat is up.
        await page.getByTestId('join-form').waitFor({ state: 'hidden' });
        await connected(page);
        return page;
      }

      /**
       * `person` in `count` tabs of one browser context (one origin, one storage, so the tabs
       * share one connection), each joined to `room`, opened one after the other; in the
       * context of `beside` (a tab opened before) when given, else in a new one.
       */
      async function openTabs(room: string, person: Person, count: number, beside?: Page) {
        if (!browser) throw new Error('no browser');
        let context = beside?.context();
        if (!context) {
          const made = await browser.newContext({ viewport: { width: 900, height: 720 } });
          cleanups.push(() => made.close());
          context = made;
        }
        const pages: Page[] = [];
        for (let i = 0; i < count; i++) {
          const page = await context.newPage();
          watch(page, `${person.name} (tab ${i + 1})`);
          await page.goto(address(room, person));
          await page.getByTestId('join-form').waitFor({ state: 'hidden' });
          await connected(page);
          pages.push(page);
        }
        return pages;
      }

      /** Waits for `connected · <transport>`; through the front, never on a WebSocket. */
      async function connected(page: Page) {
        const connection = page.getByTestId('connection');
        await poll(() => connection.textContent()).toMatch(/\bconnected\b/);
        const text = (await connection.textContent()) ?? '';
        expect(text).toMatch(/websocket|stream|longpoll/);
        if (via === 'front') expect(text).not.toMatch(/websocket/);
      }

      /** A page that has not joined: the join form at `url`. */
      async function visit(url: string) {
        if (!browser) throw new Error('no browser');
        const context = await browser.newContext({ viewport: { width: 900, height: 720 } });
        cleanups.push(() => context.close());
        const page = await context.newPage();
        watch(page, 'visitor');
        await page.goto(url);
        await page.getByTestId('join-form').waitFor();
        return page;
      }

      /** Console errors matching `pattern` are expected in this test (e.g. while offline). */
      const allow = (pattern: RegExp) => allowed.push(pattern);
      const finish = () =>
        expect(problems, 'page errors, console errors, HTTP errors and dialogs').toEqual([]);
      return { demo, base, address, open, openTabs, visit, connected, allow, finish };
    }

    for (const via of ['direct', 'front'] as const) {
      const where = via === 'direct' ? 'directly' : 'through the front that refuses WebSocket';

      it(`lets an agent and a customer chat both ways, ${where}`, async () => {
        const { open, finish } = await setup(via);
        const agent = await open('support', ANN);
        const customer = await open('support', BOB, 'form');
        expect(await agent.getByTestId('ui-label').textContent()).toBe(ui.label);
        await poll(() => agent.getByTestId('empty').textContent()).toMatch(/no messages yet/i);

        // The panel tells the transport and why, from the client's diagnostics.
        for (const page of [agent, customer]) {
          const transport = page.getByTestId('panel-transport');
          const why = page.getByTestId('panel-why');
          if (via === 'direct') {
            await poll(() => transport.textContent()).toBe('websocket');
            await poll(() => why.textContent()).toMatch(/websocket: the first choice/);
          } else {
            await poll(() => transport.textContent()).toBe('stream');
            await poll(() => why.textContent()).toMatch(/websocket refused, fell back to stream/);
          }
        }

        // The customer types: the agent sees it, then the message.
        await customer.getByTestId('input').pressSequentially('Hello, my order is late');
        await poll(() => agent.getByTestId('typing').textContent()).toContain('Bob');
        await customer.getByTestId('input').press('Enter');
        await expectMessages(agent, ['Hello, my order is late']);
        await expectMessages(customer, ['Hello, my order is late']);
        expect(await agent.getByTestId('empty').isVisible(), 'no "empty room" text').toBe(false);
        await poll(() => customer.getByTestId('input').inputValue()).toBe('');

        await send(agent, 'Hi Bob, let me look at it', 'click');
        // Bob answers what he has seen: two pages sending at once have no order between them.
        await expectMessages(customer, ['Hello, my order is late', 'Hi Bob, let me look at it']);
        await send(customer, 'Thanks!');
        const all = ['Hello, my order is late', 'Hi Bob, let me look at it', 'Thanks!'];
        await expectMessages(customer, all);
        await expectMessages(agent, all);

        for (const page of [agent, customer]) {
          const items = page.getByTestId('messages').getByTestId('message');
          expect(await items.getByTestId('message-name').allTextContents()).toEqual([
            'Bob',
            'Ann',
            'Bob',
          ]);
          expect(await items.nth(0).getAttribute('class')).toMatch(/\brole-customer\b/);
          expect(await items.nth(1).getAttribute('class')).toMatch(/\brole-agent\b/);
        }
        // "Bob is typing…" goes away (typing: false on send, or 4 s after the last true).
        await poll(() => agent.getByTestId('typing').textContent()).toMatch(/^\s*$/);

        // Presence: each sees both online; when the customer's page goes, the agent sees it.
        for (const page of [agent, customer]) {
          await poll(() => page.getByTestId('online').textContent()).toBe(
            'Online (2): Ann (agent), Bob (customer)',
          );
        }

        await agent.screenshot({ path: `${SCREENSHOTS}/${ui.id}-${via}-agent.png` });
        await customer.screenshot({ path: `${SCREENSHOTS}/${ui.id}-${via}-customer.png` });
        await customer.close({ runBeforeUnload: true });
        await poll(() => agent.getByTestId('online').textContent()).toBe('Online (1): Ann (agent)');
        finish();
      });
    }

    it('catches up after a reload and after being away, nothing lost or repeated', async () => {
      const { open, address, connected, finish } = await setup('direct');
      const agent = await open('reload', ANN);
      const customer = await open('reload', BOB);

      await send(customer, 'one');
      await expectMessages(agent, ['one']);

      await agent.reload();
      await connected(agent);
      // A message after the reload: anything repeated by the reload would show before it.
      await send(customer, 'two');
      await expectMessages(agent, ['one', 'two']);

      // Away (another page), while the customer writes on.
      await agent.goto('about:blank');
      await send(customer, 'three');
      await send(customer, 'four');
      await expectMessages(customer, ['one', 'two', 'three', 'four']);

      await agent.goto(address('reload', ANN));
      await connected(agent);
      await send(customer, 'five');
      await send(agent, 'six');
      const all = ['one', 'two', 'three', 'four', 'five', 'six'];
      await expectMessages(agent, all);
      await expectMessages(customer, all);
      expect(await agent.getByTestId('message').count()).toBe(6);
      finish();
    });

    it('shows a joining customer the last lines of the room, then live ones, each once', async () => {
      const { demo, open, finish } = await setup('direct');
      // More than a UI shows on join (HISTORY_LINES, 50): it shows the last 50.
      const earlier = Array.from({ length: 55 }, (_, i) => `earlier ${i + 1}`);
      for (const text of earlier) await demo.comet.publish('chat:rewind', line(ANN, text));
      const customer = await open('rewind', BOB);
      await expectMessages(customer, earlier.slice(-50));
      const agent = await open('rewind', ANN);
      await expectMessages(agent, earlier.slice(-50));
      // A live line after the rewound ones: nothing before it comes twice.
      await send(agent, 'live after the history');
      const all = [...earlier.slice(-50), 'live after the history'];
      await expectMessages(customer, all);
      await expectMessages(agent, all);
      finish();
    });

    it('holds one connection for three tabs of one person, and shows a line sent in one in all', async () => {
      const { demo, open, openTabs, finish } = await setup('direct');
      /** What the server holds open: WebSockets, streams and held polls. */
      const held = () => demo.comet.stats().held;
      const [first] = await openTabs('tabs', ANN, 1);
      await send(first as Page, 'before the other tabs');
      await expectMessages(first as Page, ['before the other tabs']);
      const tabs = [first as Page, ...(await openTabs('tabs', ANN, 2, first))];
      // Tabs opened later start with the room's lines too (from the tab that holds the connection).
      for (const tab of tabs) await expectMessages(tab, ['before the other tabs']);
      await poll(held).toBe(1);
      // Another person, in another browser context, has a connection of their own.
      const customer = await open('tabs', BOB);
      await poll(held).toBe(2);
      await send(tabs[1] as Page, 'from the second tab');
      // The customer answers what he has seen: two pages sending at once have no order.
      await expectMessages(customer, ['before the other tabs', 'from the second tab']);
      await send(customer, 'from the customer');
      const all = ['before the other tabs', 'from the second tab', 'from the customer'];
      for (const page of [...tabs, customer]) await expectMessages(page, all);
      // Every tab shows who is in the room, also those that do not hold the connection.
      for (const page of [...tabs, customer]) {
        await poll(() => page.getByTestId('online').textContent()).toBe(
          'Online (2): Ann (agent), Bob (customer)',
        );
      }
      expect(held()).toBe(2);
      finish();
    });

    it('shows HTML in messages and names as text, never as markup', async () => {
      const { open, finish } = await setup('direct');
      const agent = await open('html', ANN);
      const eve = await open('html', { name: '<i>Eve</i>', role: 'customer' });

      const attack = '<img src=x onerror=alert(1)>';
      const bold = '<b>bold</b> & <script>alert(2)</script>';
      await send(eve, attack);
      await send(eve, bold);
      for (const page of [agent, eve]) {
        await expectMessages(page, [attack, bold]);
        const list = page.getByTestId('messages');
        expect(await list.getByTestId('message-name').allTextContents()).toEqual([
          '<i>Eve</i>',
          '<i>Eve</i>',
        ]);
        expect(await list.locator('img, b, i, script').count()).toBe(0);
      }
      expect(await agent.locator('img').count()).toBe(0);
      await agent.screenshot({ path: `${SCREENSHOTS}/${ui.id}-html-as-text.png` });
      finish();
    });

    it('cannot send a blank message and shows the server error for 2001 characters', async () => {
      const { open, finish } = await setup('direct');
      const agent = await open('limits', ANN);
      const customer = await open('limits', BOB);
      const input = customer.getByTestId('input');
      const sendButton = customer.getByTestId('send');

      await poll(() => sendButton.isDisabled()).toBe(true);
      await input.fill('   \t ');
      await poll(() => sendButton.isDisabled()).toBe(true);
      await input.press('Enter');

      await input.fill('x'.repeat(2001));
      // A `maxlength` would cut it to 2000 and the server's limit would never show.
      expect((await input.inputValue()).length, 'the input takes 2001 characters').toBe(2001);
      await poll(() => sendButton.isEnabled()).toBe(true);
      await sendButton.click();
      await poll(() => customer.getByTestId('error').textContent()).toContain(ERROR_TEXT);
      await customer.screenshot({ path: `${SCREENSHOTS}/${ui.id}-send-error.png` });

      // The next good message is the first one anybody sees: nothing blank or too long went out.
      await input.fill('x'.repeat(2000));
      await input.press('Enter');
      await expectMessages(agent, ['x'.repeat(2000)]);
      await expectMessages(customer, ['x'.repeat(2000)]);
      finish();
    });

    it('keeps the newest message in view on join, on a received message and after a send', async () => {
      const { demo, open, finish } = await setup('direct');
      const earlier = Array.from({ length: 30 }, (_, i) => `earlier ${i + 1}`);
      for (const text of earlier) await demo.comet.publish('chat:scroll', line(BOB, text));

      const agent = await open('scroll', ANN);
      await expectMessages(agent, earlier);
      expect(await overflows(agent), 'enough lines to scroll').toBe(true);
      await poll(() => atEnd(agent)).toBe(true);

      await demo.comet.publish('chat:scroll', line(BOB, 'received'));
      await expectMessages(agent, [...earlier, 'received']);
      await poll(() => atEnd(agent)).toBe(true);

      // Scrolled up to read, then sending: the own line comes into view anyway.
      await agent.getByTestId('messages').evaluate((list) => {
        list.scrollTop = 0;
      });
      await send(agent, 'sent');
      await expectMessages(agent, [...earlier, 'received', 'sent']);
      await poll(() => atEnd(agent)).toBe(true);
      finish();
    });

    it('wraps a 2 000-character word inside its bubble, with no horizontal overflow', async () => {
      const { open, finish } = await setup('direct');
      const agent = await open('long-word', ANN);
      const word = 'y'.repeat(2000);
      await send(agent, word);
      await expectMessages(agent, [word]);
      const widths = await agent.evaluate(() => {
        const list = document.querySelector('[data-testid="messages"]') as HTMLElement;
        const bubble = list.querySelector('[data-testid="message"]') as HTMLElement;
        return {
          page: document.documentElement.scrollWidth - document.documentElement.clientWidth,
          list: list.scrollWidth - list.clientWidth,
          bubble: bubble.getBoundingClientRect().right - list.getBoundingClientRect().right,
        };
      });
      expect(widths.page, 'the page is no wider than the window').toBeLessThanOrEqual(0);
      expect(widths.list, 'the list does not scroll sideways').toBeLessThanOrEqual(0);
      expect(widths.bubble, 'the bubble ends inside the list').toBeLessThanOrEqual(0);
      await agent.screenshot({ path: `${SCREENSHOTS}/${ui.id}-long-word.png` });
      finish();
    });

    it('shows an error for a bad room in the address and for a blank name, and joins neither', async () => {
      const { address, visit, connected, finish } = await setup('direct');
      const url = new URL(address('x', ANN));
      url.searchParams.set('room', 'Bad Room!');
      const page = await visit(url.href);
      const error = page.getByTestId('join-error');
      await poll(() => error.textContent()).toContain('"Bad Room!" is not a room');
      expect(await page.getByTestId('messages').isVisible(), 'not joined').toBe(false);
      expect(await page.getByTestId('room-input').inputValue()).toBe('Bad Room!');
      await page.screenshot({ path: `${SCREENSHOTS}/${ui.id}-bad-room.png` });

      await page.getByTestId('room-input').fill('fixed-room');
      await page.getByTestId('name-input').fill('   ');
      await page.getByTestId('join').click();
      await poll(() => error.textContent()).toContain('Enter your name');
      expect(await page.getByTestId('join-form').isVisible(), 'still the form').toBe(true);

      await page.getByTestId('name-input').fill('Ann');
      await page.getByTestId('join').click();
      await page.getByTestId('join-form').waitFor({ state: 'hidden' });
      await connected(page);
      expect(new URL(page.url()).searchParams.get('room')).toBe('fixed-room');
      await poll(() => page.getByTestId('empty').textContent()).toMatch(/no messages yet/i);
      finish();
    });

    it('shows a message sent offline as pending, then as delivered', async () => {
      const { open, allow, finish } = await setup('direct');
      // Requests the browser refuses while offline are logged by Chromium itself.
      allow(/ERR_INTERNET_DISCONNECTED|ERR_NETWORK_CHANGED/);
      const agent = await open('offline', ANN);
      const customer = await open('offline', BOB);

      await customer.context().setOffline(true);
      await poll(() => customer.getByTestId('connection').textContent()).toMatch(/offline/);
      await send(customer, 'sent while offline');
      const pending = customer.getByTestId('pending-message');
      await poll(() => pending.getByTestId('message-text').allTextContents()).toEqual([
        'sent while offline',
      ]);
      expect(await pending.getByTestId('message-status').getAttribute('data-status')).toBe(
        'pending',
      );
      await poll(() => customer.getByTestId('input').inputValue()).toBe('');
      await customer.screenshot({ path: `${SCREENSHOTS}/${ui.id}-pending-offline.png` });

      await customer.context().setOffline(false);
      await expectMessages(customer, ['sent while offline']);
      await expectMessages(agent, ['sent while offline']);
      await poll(() => pending.count()).toBe(0);
      const mine = customer.getByTestId('message').getByTestId('message-status');
      expect(await mine.getAttribute('data-status')).toBe('delivered');
      finish();
    });

    it('looks finished: a conversation through the front, for the screenshots', async () => {
      const { open, finish } = await setup('front');
      const agent = await open('showcase', ANN);
      const customer = await open('showcase', BOB);
      const talk = [
        [customer, 'Hi! My parcel 4471 says delivered, but nothing is here.'],
        [agent, 'Sorry about that, Bob. Let me check with the carrier.'],
        [agent, 'It was left at the neighbour at number 12. Can you ask there?'],
        [customer, 'Got it, thank you!'],
      ] as const;
      const said: string[] = [];
      for (const [page, text] of talk) {
        await send(page, text);
        said.push(text);
        await expectMessages(agent, said);
        await expectMessages(customer, said);
      }
      await poll(() => agent.getByTestId('panel-why').textContent()).toMatch(/fell back/);
      await agent.screenshot({ path: `${SCREENSHOTS}/${ui.id}-showcase-agent.png` });
      await customer.screenshot({ path: `${SCREENSHOTS}/${ui.id}-showcase-customer.png` });
      finish();
    });
  });
}
