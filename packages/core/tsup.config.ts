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

/**
 * The share entry (src/share.ts) uses the core from `./index.js`: kept external, so that an
 * application importing both carries the client once. ESM and CJS import the built index; the
 * script-tag build reads the `Cometkit` global of cometkit.global.js (loaded first).
 */
const coreExternal = (
  format: 'esm' | 'cjs' | 'iife',
): NonNullable<Options['esbuildPlugins']>[number] => ({
  name: 'core-external',
  setup(build) {
    // Only share.ts's own import: eventemitter3 has a `./index.js` of its own.
    build.onResolve({ filter: /^\.\/index\.js$/ }, ({ importer }) =>
      !importer.endsWith('src/share.ts')
        ? undefined
        : format === 'iife'
          ? { path: 'cometkit-global', namespace: 'cometkit-global' }
          : { path: format === 'cjs' ? './index.cjs' : './index.js', external: true },
    );
    build.onLoad({ filter: /.*/, namespace: 'cometkit-global' }, () => ({
      contents: 'module.exports = globalThis.Cometkit;',
      loader: 'js',
    }));
  },
});
const share: Options = { ...shared, entry: ['src/share.ts'], dts: true, splitting: false };

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
  { ...share, format: ['esm'], esbuildPlugins: [coreExternal('esm')] },
  { ...share, format: ['cjs'], esbuildPlugins: [coreExternal('cjs')] },
  // Sharing for <script src> pages, after cometkit.global.js: one more global, `CometkitShare`.
  {
    ...shared,
    minify: true,
    entry: { share: 'src/share.ts' },
    format: ['iife'],
    globalName: 'CometkitShare',
    platform: 'browser',
    noExternal: ['eventemitter3'],
    esbuildPlugins: [coreExternal('iife')],
    outExtension: () => ({ js: '.global.js' }),
  },
]);
