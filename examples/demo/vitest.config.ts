import { defineProject } from 'vitest/config';
import { alias } from '../../vitest.shared';

// Browser end-to-end: the demo server in-process, Debian's Chromium through playwright-core.
// One file per UI, one browser per file, files one after the other (2 shared cores).
export default defineProject({
  resolve: { alias },
  test: {
    name: 'e2e',
    environment: 'node',
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    fileParallelism: false,
  },
});
