/**
 * The built script-tag client the Chromium tests load: where it is, and a build of core when it
 * is missing or older than its sources (so a test run after an edit never loads a stale bundle).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../packages/core/', import.meta.url));

/** `packages/core/dist/cometkit.global.js`. */
export const coreBundle = join(root, 'dist/cometkit.global.js');

function newestSource(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestSource(path) : statSync(path).mtimeMs);
  }
  return newest;
}

/** Builds core when the IIFE is missing or older than its sources. */
export function ensureBuilt(): void {
  if (existsSync(coreBundle) && statSync(coreBundle).mtimeMs >= newestSource(join(root, 'src')))
    return;
  execFileSync('pnpm', ['--filter', '@cometkit/core', 'build'], { cwd: root, stdio: 'ignore' });
}
