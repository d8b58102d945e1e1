import { defineConfig } from 'tsup';

export default defineConfig({
  entry: ['src/index.ts'],
  format: ['esm', 'cjs'],
  dts: true,
  tsconfig: '../../tsconfig.build.json',
  target: 'es2022',
  sourcemap: true,
  clean: true,
  // The protocol module is bundled in, so `@cometkit/core` stays a devDependency.
  noExternal: [/^@cometkit\/core/],
});
