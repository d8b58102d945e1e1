import { fileURLToPath } from 'node:url';

const here = (path: string) => fileURLToPath(new URL(path, import.meta.url));

/**
 * Tests import the workspace packages from source, so `vitest` needs no build first.
 * Exact-match patterns keep subpath imports (`@cometkit/core/protocol`) apart.
 */
export const alias = [
  { find: /^@cometkit\/core$/, replacement: here('./packages/core/src/index.ts') },
  { find: /^@cometkit\/core\/(.*)$/, replacement: here('./packages/core/src/$1.ts') },
  { find: /^@cometkit\/server$/, replacement: here('./packages/server/src/index.ts') },
  { find: /^@cometkit\/react$/, replacement: here('./packages/react/src/index.ts') },
  { find: /^@cometkit\/angular$/, replacement: here('./packages/angular/src/index.ts') },
  { find: /^@cometkit\/redis$/, replacement: here('./packages/redis/src/index.ts') },
  { find: /^@cometkit\/test-utils$/, replacement: here('./packages/test-utils/src/index.ts') },
];
