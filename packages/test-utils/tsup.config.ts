import { defineConfig } from 'tsup';

// Only so plain Node (the demo's `start.mjs`) can import the helpers; tests keep importing the
// sources through the vitest alias. Private package: no types build, no CommonJS.
export default defineConfig({
  entry: ['src/index.ts'],
  format: ['esm'],
  dts: false,
  tsconfig: '../../tsconfig.build.json',
  target: 'es2022',
  sourcemap: true,
  clean: true,
  external: ['msw'],
});
