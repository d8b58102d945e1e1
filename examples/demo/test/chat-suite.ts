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
const SCREENSHOTS = repo('artifacts/screenshots');

/** One of the three UIs and the file its build must have produced. */
export interface Ui {
  id: 'script-tag' | 'react' | 'angular';
  /** Where the demo serves it. */
  path: string;
  /** A file the UI cannot work without (repository-relative) and how to make it. */
  needs: { file: string; how: string };
}

export const UIS: Record<Ui['id'], Ui> = {
  'script-tag': {
    id: 'script-tag',
    path: '/script-tag/',
    needs: { file: 'packages/core/dist/cometkit.global.js', how: 'pnpm build' },
  },
  react: {
    id: 'react',
    path: '/react/',
    needs: {
      file: 'examples/react-chat/dist/index.html',
      how: 'pnpm build && pnpm build:examples',
    },
  },
  angular: {
    id: 'angular',
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
        page.on('pageerror', (error) => problems.push(`${person.name}: ${error.message}`));
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

      /** Waits for `connected · <transport>`; through the front, never on a WebSocket. */
      async function connected(page: Page) {
        const connection = page.getByTestId('connection');
        await poll(() => connection.textContent()).toMatch(/\bconnected\b/);
        const text = (await connection.textContent()) ?? '';
        expect(text).toMatch(/websocket|stream|longpoll/);
        if (via === 'front') expect(text).not.toMatch(/websocket/);
      }

      const finish = () => expect(problems, 'page errors and dialogs').toEqual([]);
      return { address, open, connected, finish };
    }

    for (const via of ['direct', 'front'] as const) {
      const where = via === 'direct' ? 'directly' : 'through the front that refuses WebSocket';

      it(`lets an agent and a customer chat both ways, ${where}`, async () => {
        const { open, finish } = await setup(via);
        const agent = await open('support', ANN);
        const customer = await open('support', BOB, 'form');

        // The customer types: the agent sees it, then the message.
        await customer.getByTestId('input').pressSequentially('Hello, my order is late');
        await poll(() => agent.getByTestId('typing').textContent()).toContain('Bob');
        await customer.getByTestId('input').press('Enter');
        await expectMessages(agent, ['Hello, my order is late']);
        await expectMessages(customer, ['Hello, my order is late']);
        await poll(() => customer.getByTestId('input').inputValue()).toBe('');

        await send(agent, 'Hi Bob, let me look at it', 'click');
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

        await agent.screenshot({ path: `${SCREENSHOTS}/${ui.id}-${via}-agent.png` });
        await customer.screenshot({ path: `${SCREENSHOTS}/${ui.id}-${via}-customer.png` });
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
  });
}
