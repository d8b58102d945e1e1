// What the size targets of issue 2 would take: the core built from source the way it ships
// (esbuild, then the terser pass of packages/core/scripts/minify.mjs, same options), with one part
// swapped for a stand-in from bench/what-if/ (never shipped). The figures behind the Size
// entry of docs/decisions.md. Nothing here is written to disk.
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

const here = dirname(fileURLToPath(import.meta.url));
const core = join(here, '../../packages/core');
// esbuild and terser are the core's own build tools (its devDependencies).
const requireFromCore = createRequire(join(core, 'package.json'));
const { build } = requireFromCore('esbuild');
const { minify } = requireFromCore('terser');
const { terserOptions } = await import(join(core, 'scripts/terser-options.mjs'));

const whatIf = (file) => join(here, '../what-if', file);
const DEPENDENCIES = ['ky', 'eventemitter3', 'eventsource-parser'];
const TARGETS = { iife: 11 * 1024, esm: 5 * 1024 };

/** Replaces imports of `select` (the transport registry) with the long-poll-only one. */
const longPollOnly = {
  name: 'long-poll-only',
  setup(b) {
    b.onResolve({ filter: /\/select$/ }, () => ({ path: whatIf('longpoll-only.ts') }));
  },
};

async function size({ format, alias = {}, plugins = [] }) {
  const esm = format === 'esm';
  const result = await build({
    entryPoints: [join(core, esm ? 'src/index.ts' : 'src/browser.ts')],
    bundle: true,
    format,
    globalName: 'Cometkit',
    platform: esm ? 'neutral' : 'browser',
    target: 'es2022',
    minify: true,
    write: false,
    logLevel: 'silent',
    alias,
    plugins,
    external: esm ? DEPENDENCIES : [],
  });
  const out = await minify(result.outputFiles[0].text, terserOptions({ esm, toplevel: esm }));
  return gzipSync(out.code, { level: 9 }).length;
}

const rows = [
  ['IIFE as shipped', 'iife', {}],
  ['IIFE, ky -> 20-line fetch adapter', 'iife', { alias: { ky: whatIf('ky-fetch.ts') } }],
  [
    'IIFE, eventsource-parser -> 25-line parser',
    'iife',
    { alias: { 'eventsource-parser': whatIf('sse-lines.ts') } },
  ],
  [
    'IIFE, both',
    'iife',
    { alias: { ky: whatIf('ky-fetch.ts'), 'eventsource-parser': whatIf('sse-lines.ts') } },
  ],
  ['ESM own code as shipped', 'esm', {}],
  ['ESM own code, long-poll transport only', 'esm', { plugins: [longPollOnly] }],
];
console.log('what the size targets would take (gzip -9; stand-ins from bench/what-if/)');
for (const [name, format, options] of rows) {
  const bytes = await size({ format, ...options });
  const target = TARGETS[format];
  console.log(
    `${name.padEnd(44)} ${String(bytes).padStart(6)} B  target ${target} B  ${bytes <= target ? 'ok' : 'over'}`,
  );
}
