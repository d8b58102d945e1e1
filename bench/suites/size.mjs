// Gzip size of @cometkit/core as built (run `pnpm --filter @cometkit/core build` first; this
// suite builds nothing): the ESM own code (ky and eventemitter3 external, i.e. dist/index.js and
// the chunks it imports) and the IIFE for <script src> with everything inside.
// Targets: ESM own code <= 5 KB gzip, IIFE all-in <= 11 KB gzip.
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
// Over target is reported, not failed: the figures are the result.
