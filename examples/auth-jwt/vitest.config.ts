import { defineProject } from 'vitest/config';
import { alias } from '../../vitest.shared';

// The example's server and client run in the test's process, from source (the alias), so the
// smoke test needs no build.
export default defineProject({
  resolve: { alias },
  test: {
    name: 'examples-auth-jwt',
    environment: 'node',
    include: ['test/**/*.test.ts'],
  },
});
