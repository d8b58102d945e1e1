import { defineConfig } from 'tsup';

export default defineConfig([
  {
    // The package: ESM + CJS + d.ts; ky, eventemitter3 and eventsource-parser stay external (dependencies).
    entry: ['src/index.ts', 'src/protocol.ts'],
    format: ['esm', 'cjs'],
    dts: true,
    tsconfig: '../../tsconfig.build.json',
    target: 'es2022',
    // Minified (with source maps) so the shipped file is what the size budget measures.
    minify: true,
    sourcemap: true,
    clean: true,
    // Each entry self-contained: index.js needs no shared chunk (fewer bytes than importing one).
    splitting: false,
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
