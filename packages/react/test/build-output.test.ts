// @vitest-environment node
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from 'tsup';
import { afterAll, describe, expect, it } from 'vitest';
import config from '../tsup.config';

const outDir = await mkdtemp(join(tmpdir(), 'cometkit-react-build-'));

afterAll(() => rm(outDir, { recursive: true, force: true }));

describe('the build', () => {
  it("starts both bundles with 'use client' for React Server Components", async () => {
    const options = Array.isArray(config) ? config[0] : config;
    await build({
      ...options,
      entry: [new URL('../src/index.ts', import.meta.url).pathname],
      tsconfig: new URL('../../../tsconfig.build.json', import.meta.url).pathname,
      outDir,
      dts: false,
      sourcemap: false,
      silent: true,
    });
    for (const file of ['index.js', 'index.cjs']) {
      const code = await readFile(join(outDir, file), 'utf8');
      expect(code.split('\n')[0], file).toBe("'use client';");
      expect(code, file).toContain('useSyncExternalStore');
    }
  }, 20_000);
});
