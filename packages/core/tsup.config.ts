import { defineConfig } from 'tsup';

export default defineConfig([
  {
    // The package for `import`: ESM + d.ts; ky, eventemitter3 and eventsource-parser stay
    // external (dependencies).
    entry: ['src/index.ts', 'src/protocol.ts'],
    format: ['esm'],
    dts: true,
    tsconfig: '../../tsconfig.build.json',
    target: 'es2022',
    // Minified (with source maps) so the shipped file is what the size budget measures.
    minify: true,
    sourcemap: true,
    // The build script empties dist/ first: configs build in parallel, so none cleans.
    clean: false,
    // Each entry self-contained: index.js needs no shared chunk (fewer bytes than importing one).
    splitting: false,
  },
  {
    // The package for `require`: CJS + d.cts. ky is ESM-only, so it is bundled in: `require`
    // of an ES module needs Node 20.19+, and even there esbuild's CommonJS interop would hand
    // the client ky's module namespace instead of its default export (test/dist.test.ts).
    // eventemitter3 and eventsource-parser ship CommonJS and stay external.
    entry: ['src/index.ts', 'src/protocol.ts'],
    format: ['cjs'],
    dts: true,
    tsconfig: '../../tsconfig.build.json',
    target: 'es2022',
    minify: true,
    sourcemap: true,
    clean: false,
    splitting: false,
    noExternal: ['ky'],
  },
  {
    // The <script src> build: one global `Cometkit`, everything inside.
    entry: { cometkit: 'src/browser.ts' },
    format: ['iife'],
    globalName: 'Cometkit',
    platform: 'browser',
    minify: true,
    noExternal: ['ky', 'eventemitter3', 'eventsource-parser'],
    tsconfig: '../../tsconfig.build.json',
    target: 'es2022',
    sourcemap: true,
    clean: false,
    outExtension: () => ({ js: '.global.js' }),
  },
]);
