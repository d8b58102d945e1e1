import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

/** What `startDemo` of `examples/demo/server.mjs` returns (the part this test uses). */
interface Demo {
  url: string;
  close(): Promise<void>;
}
type StartDemo = (options: { port: number; frontPort: number }) => Promise<Demo>;

const built = fileURLToPath(new URL('../dist/browser/index.html', import.meta.url));
// A computed specifier: the demo is plain .mjs outside this package's TypeScript program.
const demoModule = new URL('../../demo/server.mjs', import.meta.url).href;

let demo: Demo;
let browser: Browser;
const pages: Page[] = [];
let roomCount = 0;

beforeAll(async () => {
  if (!existsSync(built)) {
    throw new Error(
      'examples/angular-chat is not built: run `pnpm build && pnpm build:examples` first',
    );
  }
  const { startDemo } = (await import(demoModule)) as { startDemo: StartDemo };
  demo = await startDemo({ port: 0, frontPort: 0 });
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
});

afterEach(async () => {
  await Promise.all(pages.splice(0).map((page) => page.close()));
});

afterAll(async () => {
  await browser?.close();
  await demo?.close();
});

/** A fresh room per test, so tests never see each other's history. */
function newRoom(): string {
  roomCount += 1;
  return `ng-test-${process.pid}-${roomCount}`;
}

/** Opens the Angular app joined as `name`/`role` and waits until it is connected. */
async function join(room: string, name: string, role: 'agent' | 'customer'): Promise<Page> {
  const page = await browser.newPage();
  page.setDefaultTimeout(10_000);
  pages.push(page);
  const errors: string[] = [];
  page.on('pageerror', (error) => errors.push(error.message));
  await page.goto(`${demo.url}/angular/?room=${room}&name=${name}&role=${role}`);
  await page
    .getByTestId('connection')
    .filter({ hasText: /^connected · / })
    .waitFor();
  expect(errors).toEqual([]);
  return page;
}

const texts = (page: Page) => page.getByTestId('message-text').allTextContents();

describe('the Angular support chat (AOT build, served under /angular/)', () => {
  it('shows a message sent from another tab, with typing and the sender role', async () => {
    const room = newRoom();
    const customer = await join(room, 'Cam', 'customer');
    const agent = await join(room, 'Ann', 'agent');

    await agent.getByTestId('input').fill('Hello, how can I help?');
    await customer.getByTestId('typing').filter({ hasText: 'Ann is typing…' }).waitFor();
    await agent.getByTestId('input').press('Enter');

    const line = customer.getByTestId('message').filter({ hasText: 'Hello, how can I help?' });
    await line.waitFor();
    expect(await line.getByTestId('message-name').textContent()).toBe('Ann');
    expect(await line.getAttribute('class')).toContain('role-agent');
    await customer.getByTestId('typing').filter({ hasText: /^$/ }).waitFor();
    await expect.poll(() => agent.getByTestId('input').inputValue()).toBe('');
  });

  it('renders history after a reload, then continues live with nothing repeated', async () => {
    const room = newRoom();
    const customer = await join(room, 'Cam', 'customer');
    await customer.getByTestId('input').fill('first');
    await customer.getByTestId('send').click();
    await customer.getByTestId('message-text').filter({ hasText: 'first' }).waitFor();

    await customer.reload();
    await customer
      .getByTestId('connection')
      .filter({ hasText: /^connected · / })
      .waitFor();
    await customer.getByTestId('message-text').filter({ hasText: 'first' }).waitFor();

    const agent = await join(room, 'Ann', 'agent');
    await agent.getByTestId('input').fill('second');
    await agent.getByTestId('input').press('Enter');
    await customer.getByTestId('message-text').filter({ hasText: 'second' }).waitFor();
    expect(await texts(customer)).toEqual(['first', 'second']);
  });

  it('renders text as text and keeps send disabled for blank input', async () => {
    const room = newRoom();
    const page = await join(room, 'Cam', 'customer');
    await page.getByTestId('input').fill('   ');
    expect(await page.getByTestId('send').isDisabled()).toBe(true);
    await page.getByTestId('input').fill('<b>not bold</b>');
    await page.getByTestId('send').click();
    await page.getByTestId('message-text').filter({ hasText: '<b>not bold</b>' }).waitFor();
    expect(await page.getByTestId('messages').locator('b').count()).toBe(0);
  });
});
