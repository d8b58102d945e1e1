// The tests that need @cometkit/core and @cometkit/server together live here, not in either
// package: core depending on the server for its tests made a cyclic workspace dependency.
import { defineProject } from 'vitest/config';
import { alias } from '../vitest.shared';

export default defineProject({
  resolve: { alias },
  test: {
    name: 'integration',
    environment: 'node',
    include: ['*.test.ts'],
    // abort.integration.test.ts collects garbage (global.gc) to show aborts survive it.
    execArgv: ['--expose-gc'],
  },
});
