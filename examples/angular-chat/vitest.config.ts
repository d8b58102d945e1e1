import { defineProject } from 'vitest/config';
import { alias } from '../../vitest.shared';

export default defineProject({
  resolve: { alias },
  test: {
    name: 'example-angular-chat',
    environment: 'node',
    include: ['test/**/*.test.ts'],
    // Launching Chromium and starting the demo take a few seconds on a busy machine.
    hookTimeout: 20_000,
    testTimeout: 20_000,
  },
});
