import { defineConfig, type Options } from 'tsup';

/** What every build shares. The build script empties dist/ first: configs build in parallel, so none cleans. */
const shared: Options = {
  tsconfig: '../../tsconfig.build.json',
  target: 'es2022',
  sourcemap: true,
  clean: false,
};

/**
 * The package entries, each self-contained: no shared chunk (fewer bytes than importing one).
 * Not minified: a user's bundler minifies, and until then stack traces and class names stay
 * readable. The size budget minifies this build itself (bench/suites/size.mjs).
 */
const entries: Options = {
  ...shared,
  // node.ts: the `node` export condition (index.ts with the node:http post); node: imports
  // stay external (tsup's default platform is node).
  entry: ['src/index.ts', 'src/protocol.ts', 'src/node.ts', 'src/presence.ts'],
  dts: true,
  splitting: false,
};

export default defineConfig([
  // For `import`: ESM + d.ts; ky, eventemitter3 and eventsource-parser stay external (dependencies).
  { ...entries, format: ['esm'] },
  // For `require`: CJS + d.cts. ky is ESM-only, so it is bundled in: `require` of an ES module
  // needs Node 20.19+, and even there esbuild's CommonJS interop would hand the client ky's
  // module namespace instead of its default export (tests/dist.test.ts at the repository root). eventemitter3 and
  // eventsource-parser ship CommonJS and stay external.
  { ...entries, format: ['cjs'], noExternal: ['ky'] },
  // The <script src> build: one global `Cometkit`, everything inside, minified (nothing else
  // will minify it); the build script then runs a terser pass over it (scripts/minify.mjs).
  {
    ...shared,
    minify: true,
    entry: { cometkit: 'src/browser.ts' },
    format: ['iife'],
    globalName: 'Cometkit',
    platform: 'browser',
    noExternal: ['ky', 'eventemitter3', 'eventsource-parser'],
    outExtension: () => ({ js: '.global.js' }),
  },
  // Presence for <script src> pages, next to the client: one global `CometkitPresence`.
  {
    ...shared,
    minify: true,
    entry: { presence: 'src/presence.ts' },
    format: ['iife'],
    globalName: 'CometkitPresence',
    platform: 'browser',
    outExtension: () => ({ js: '.global.js' }),
  },
]);
