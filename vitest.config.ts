import { defineConfig } from 'vitest/config';

// One run over every package; each project keeps its own config (environment, setup files).
export default defineConfig({
  test: {
    projects: [
      'packages/*/vitest.config.ts',
      'examples/*/vitest.config.ts',
      'tests/vitest.config.ts',
    ],
  },
});
