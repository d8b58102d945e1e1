import { defineConfig } from 'tsup';

export default defineConfig({
  entry: ['src/index.ts'],
  format: ['esm', 'cjs'],
  dts: true,
  tsconfig: '../../tsconfig.build.json',
  target: 'es2022',
  sourcemap: true,
  clean: true,
  // Every export is a hook or a provider: React Server Components must treat the whole entry as
  // a client module. esbuild drops module-level directives when bundling, so it goes in as a
  // banner; test/build-output.test.ts checks that it survives in dist.
  banner: { js: "'use client';" },
  external: ['react', '@cometkit/core'],
});
