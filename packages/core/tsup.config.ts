import { defineConfig, type Options } from 'tsup';

/** What every build shares. The build script empties dist/ first: configs build in parallel, so none cleans. */
const shared: Options = {
  tsconfig: '../../tsconfig.build.json',
  target: 'es2022',
  // Minified (with source maps) so the shipped file is what the size budget measures; the
  // build script then runs a terser pass over it (scripts/minify.mjs).
  minify: true,
  sourcemap: true,
  clean: false,
};

/** The package entries, each self-contained: no shared chunk (fewer bytes than importing one). */
const entries: Options = {
  ...shared,
  entry: ['src/index.ts', 'src/protocol.ts'],
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
  // The <script src> build: one global `Cometkit`, everything inside.
  {
    ...shared,
    entry: { cometkit: 'src/browser.ts' },
    format: ['iife'],
    globalName: 'Cometkit',
    platform: 'browser',
    noExternal: ['ky', 'eventemitter3', 'eventsource-parser'],
    outExtension: () => ({ js: '.global.js' }),
  },
]);
