import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildSync } from 'esbuild';
import { describe, expect, expectTypeOf, it } from 'vitest';
import * as core from '../src/index';

describe('the package entry', () => {
  it('exports the client factory, errors, guards, backoff and the reducer', () => {
    expect(typeof core.createCometClient).toBe('function');
    expect(typeof core.backoffDelay).toBe('function');
    expect(typeof core.reduce).toBe('function');
    expect(typeof core.isHttpError).toBe('function');
    expect(new core.HttpError(400, 'bad_request', 'x')).toBeInstanceOf(core.CometError);
  });

  it('imports in plain Node with no window, no side effects, and creates a client lazily', () => {
    // Bundled with ky and eventemitter3 (Node 20 runs no TypeScript), then imported in a child
    // process, so nothing of vitest's environment is on globalThis.
    const dir = mkdtempSync(join(tmpdir(), 'cometkit-node-'));
    const entry = join(dir, 'index.mjs');
    // esbuild's API (a devDependency of core), not a binary path guessed in node_modules.
    const bundled = buildSync({
      entryPoints: [fileURLToPath(new URL('../src/index.ts', import.meta.url))],
      bundle: true,
      format: 'esm',
      platform: 'node',
      outfile: entry,
      logLevel: 'silent',
    });
    expect(bundled.errors).toEqual([]);
    const script = `
      const before = Object.keys(globalThis).sort().join();
      const core = await import(${JSON.stringify(entry)});
      if (typeof window !== 'undefined') throw new Error('window exists');
      const client = core.createCometClient();
      const after = Object.keys(globalThis).sort().join();
      if (before !== after) throw new Error('globals changed');
      if (client.getState().status !== 'idle') throw new Error('not idle');
      client.close();
      console.log('ok');
    `;
    const result = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
      encoding: 'utf8',
      timeout: 20_000,
    });
    rmSync(dir, { recursive: true, force: true });
    expect(result.stderr).toBe('');
    expect(result.stdout.trim()).toBe('ok');
  });
});

describe('types', () => {
  it('types data from the topic map and leaves other topics unknown', () => {
    const client = core.createCometClient<{ chat: { text: string } }>({
      url: 'http://x.test/api/comet',
    });
    const off = client.subscribe('chat', (data, message) => {
      expectTypeOf(data).toEqualTypeOf<{ text: string }>();
      expectTypeOf(message.topic).toEqualTypeOf<'chat'>();
    });
    client.subscribe('other', (data) => expectTypeOf(data).toBeUnknown());
    expectTypeOf(client.send<'chat'>)
      .parameter(1)
      .toEqualTypeOf<{ text: string }>();
    expectTypeOf(client.send).returns.toEqualTypeOf<Promise<string | undefined>>();
    off();
    client.close();
    expect(client.getState()).toEqual({ status: 'closed' });
  });
});
