import { fileURLToPath } from 'node:url';
import { defineConfig } from 'tsup';

const coreSource = (file: string) => fileURLToPath(new URL(`../core/src/${file}`, import.meta.url));

export default defineConfig({
  entry: ['src/index.ts'],
  format: ['esm', 'cjs'],
  // The protocol module's types are inlined from source too, so the published types do not
  // point at a package that is only a devDependency (and core need not be built first).
  dts: {
    resolve: [/^@cometkit\/core/],
    compilerOptions: { paths: { '@cometkit/core/protocol': [coreSource('protocol.ts')] } },
  },
  tsconfig: '../../tsconfig.build.json',
  target: 'es2022',
  sourcemap: true,
  clean: true,
  // `import.meta.url` in the CommonJS build (metrics.ts loads prom-client with createRequire).
  shims: true,
  // The protocol module is bundled in, so `@cometkit/core` stays a devDependency.
  noExternal: [/^@cometkit\/core/],
  esbuildOptions(options) {
    options.alias = { '@cometkit/core/protocol': coreSource('protocol.ts') };
  },
});
