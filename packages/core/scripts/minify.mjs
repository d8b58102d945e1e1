// A second minification pass over the script-tag build (dist/*.global.js, the only minified
// output): terser on esbuild's minified code saves about 5% of the gzip bytes that esbuild alone
// leaves (docs/decisions.md, Size). Only safe transforms (two compress passes, no `unsafe*`
// option), and the source map is carried through, so stack traces and the size suite's
// per-source breakdown still point at src/. The ESM and CommonJS builds are not minified.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { minify } from 'terser';
import { terserOptions } from './terser-options.mjs';

const dist = new URL('../dist/', import.meta.url).pathname;
const files = readdirSync(dist).filter((f) => f.endsWith('.global.js'));
if (files.length === 0) throw new Error(`no script-tag build in ${dist}: run tsup first`);

for (const file of files) {
  const path = join(dist, file);
  const code = readFileSync(path, 'utf8').replace(/\n\/\/# sourceMappingURL=.*\s*$/, '\n');
  const map = readFileSync(`${path}.map`, 'utf8');
  const out = await minify(
    { [file]: code },
    {
      // The IIFE's top level is its one global: not private.
      ...terserOptions({ esm: false, toplevel: false }),
      sourceMap: { content: map, url: `${file}.map` },
    },
  );
  if (!out.code || typeof out.map !== 'string') throw new Error(`terser gave nothing for ${file}`);
  writeFileSync(path, out.code);
  writeFileSync(`${path}.map`, out.map);
}
console.log(`minify: terser pass over ${files.join(', ')}`);
