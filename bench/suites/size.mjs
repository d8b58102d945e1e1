// Gzip size of @cometkit/core as built (run `pnpm --filter @cometkit/core build` first; this
// suite builds nothing): the ESM own code (ky and eventemitter3 external, i.e. dist/index.js and
// the chunks it imports) and the IIFE for <script src> with everything inside.
// Targets: ESM own code <= 5 KB gzip, IIFE all-in <= 11 KB gzip.
// Then where the bytes go, read from the builds' source maps: each output byte belongs to the
// source its mapping names (unmapped bytes are the bundler's glue). A group's "gzip alone" is
// its bytes cut out and gzipped by themselves: more than its share of the whole, since gzip
// finds fewer repeats in less text, but the floor a dependency sets on its own.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

const dist = join(dirname(fileURLToPath(import.meta.url)), '../../packages/core/dist');
if (!existsSync(join(dist, 'index.js'))) {
  console.error(`no build in ${dist}: run pnpm --filter @cometkit/core build`);
  process.exit(1);
}

/** dist/index.js plus every local chunk it imports (shared with protocol.js). */
function esmFiles(entry, seen = new Set()) {
  if (seen.has(entry)) return seen;
  seen.add(entry);
  const code = readFileSync(join(dist, entry), 'utf8');
  for (const [, spec] of code.matchAll(/from\s*["']\.\/([^"']+)["']/g)) esmFiles(spec, seen);
  return seen;
}

const gzip = (text) => gzipSync(text, { level: 9 }).length;
const esm = [...esmFiles('index.js')];
const esmBytes = gzip(esm.map((f) => readFileSync(join(dist, f), 'utf8')).join('\n'));
const iife = readdirSync(dist).find((f) => f.endsWith('.global.js'));
const iifeBytes = iife ? gzip(readFileSync(join(dist, iife), 'utf8')) : Number.NaN;

const rows = [
  ['ESM own code (deps external)', esm.join(' + '), esmBytes, 5 * 1024],
  ['IIFE all-in', iife ?? 'missing', iifeBytes, 11 * 1024],
];
for (const [name, files, bytes, target] of rows) {
  const verdict = bytes <= target ? 'ok' : 'OVER';
  console.log(
    `${name.padEnd(30)} ${String(bytes).padStart(6)} B gzip  target ${target} B  ${verdict}  (${files})`,
  );
}

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
/** Output text per source file, from a file's source map (VLQ mappings). */
function bytesBySource(file) {
  const code = readFileSync(join(dist, file), 'utf8').split('\n');
  const map = JSON.parse(readFileSync(join(dist, `${file}.map`), 'utf8'));
  const out = new Map();
  const add = (name, text) => out.set(name, (out.get(name) ?? '') + text);
  let source = 0;
  map.mappings.split(';').forEach((line, row) => {
    const text = code[row] ?? '';
    let column = 0;
    let at = 0;
    let owner = '(bundler glue)';
    for (const segment of line.split(',')) {
      if (!segment) continue;
      const fields = [];
      let value = 0;
      let shift = 0;
      for (const char of segment) {
        const digit = B64.indexOf(char);
        value += (digit & 31) << shift;
        shift += 5;
        if (digit & 32) continue;
        fields.push(value & 1 ? -(value >>> 1) : value >>> 1);
        value = 0;
        shift = 0;
      }
      column += fields[0];
      add(owner, text.slice(at, column));
      at = column;
      if (fields.length > 1) {
        source += fields[1];
        owner = map.sources[source];
      } else owner = '(bundler glue)';
    }
    add(owner, text.slice(at));
  });
  return out;
}
const groupOf = (source) =>
  /node_modules\/(?:\.pnpm\/[^/]+\/node_modules\/)?((?:@[^/]+\/)?[^/]+)/.exec(source)?.[1] ??
  (source.startsWith('(') ? source : 'own code (src/)');
function breakdown(title, files) {
  const groups = new Map();
  const own = new Map();
  for (const file of files) {
    if (!existsSync(join(dist, `${file}.map`))) continue;
    for (const [source, text] of bytesBySource(file)) {
      const group = groupOf(source);
      groups.set(group, (groups.get(group) ?? '') + text);
      // (Dependencies' own source maps name their src/ files too: not ours.)
      const module = group.startsWith('own') && /src\/(.+)$/.exec(source)?.[1];
      if (module) own.set(module, (own.get(module) ?? 0) + text.length);
    }
  }
  console.log(`  ${title}:`);
  for (const [group, text] of [...groups].sort((a, b) => b[1].length - a[1].length))
    console.log(
      `    ${group.padEnd(26)} ${String(text.length).padStart(6)} B min  ${String(gzip(text)).padStart(5)} B gzip alone`,
    );
  const deps = [...groups].filter(([g]) => !g.startsWith('own') && !g.startsWith('('));
  if (deps.length > 0) {
    const floor = gzip(deps.map(([, text]) => text).join(''));
    console.log(
      `    dependencies together: ${floor} B gzip: the IIFE target leaves ${11 * 1024 - floor} B for own code and glue`,
    );
  }
  const top = [...own].sort((a, b) => b[1] - a[1]);
  console.log(`    own code by module (B min): ${top.map(([m, n]) => `${m} ${n}`).join(', ')}`);
}
console.log('where the bytes go (source maps):');
breakdown('IIFE', iife ? [iife] : []);
breakdown('ESM', esm);
// Over target is reported, not failed: the figures are the result.
