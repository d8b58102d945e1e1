import { defineProject } from 'vitest/config';
import { alias } from '../../vitest.shared';

// The worker runs as a child process on the built `@cometkit/redis`; the servers and clients
// it publishes to run in the test, from source.
export default defineProject({
  resolve: { alias },
  test: {
    name: 'examples-worker-publish',
    environment: 'node',
    include: ['test/**/*.test.ts'],
  },
});
