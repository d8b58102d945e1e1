import { defineProject } from 'vitest/config';
import { alias } from '../../vitest.shared';

// Smoke test: each example runs as a child process on the built `@cometkit/server`.
export default defineProject({
  resolve: { alias },
  test: {
    name: 'examples-server',
    environment: 'node',
    include: ['test/**/*.test.ts'],
  },
});
