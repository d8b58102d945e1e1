// The size budgets of @cometkit/core (docs/decisions.md, Size), measured on the build in
// packages/core/dist (run `pnpm --filter @cometkit/core build` first; this suite builds nothing):
// - ESM own code: what a user's bundle gets from dist/index.js (ky, eventemitter3 and
//   eventsource-parser external). The ESM build ships unminified, as a bundler wants it; here it
//   is minified the way a bundler would, with the same terser options as the script-tag build
//   (packages/core/scripts/terser-options.mjs), then gzipped.
// - IIFE all-in: dist/cometkit.global.js as shipped (minified by the build), everything inside.
// Over a budget, or a build that is older than its sources or missed the build's terser pass,
// exits 1 with the reason: `pnpm test` runs this with --check after `pnpm build`.
// Then (without --check) where the bytes go, read from the outputs' source maps: each output byte
// belongs to the source its mapping names (unmapped bytes are the bundler's glue). A group's
// "gzip alone" is its bytes cut out and gzipped by themselves: more than its share of the whole,
// since gzip finds fewer repeats in less text, but the floor a dependency sets on its own.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

/**
 * The budgets, in bytes of gzip -9: growth over these fails CI. A ledger (docs/decisions.md,
 * Size): the issue-12 baseline plus each deliberate change's measured cost, raised in the same
 * commit as that change; accidental growth still fails.
 */
const LEDGER = [
  ['issue 12 baseline (budgets against growth)', 8_800, 15_850],
  ['issue 12 module split (one module per concern)', 700, 350],
  ['issue 17 polls and sends through one HttpPost (node:http in Node)', 72, 72],
  ['issue 16 sends (legacy answers, sendTimeout, read your own writes), issue 13 client', 306, 323],
  ['issue 14 credentials on every transport (frame headers, refresh per refused topic)', 390, 330],
  ['issue 19 the position event: handshake cursors that sharing tabs hand over', 11, 10],
  ['issue 16 page lifecycle, late watchdogs, adaptive hold (both ways, remembered)', 789, 801],
  ['issue 20 rewind and persisted cursors', 335, 353],
  ['issue 17 re-poll after the turn (a flag the Node entry sets; pages poll at once)', 16, 15],
];
const BUDGETS = {
  esm: LEDGER.reduce((sum, [, esm]) => sum + esm, 0),
  iife: LEDGER.reduce((sum, [, , iife]) => sum + iife, 0),
};
/** A shipped IIFE that terser still shrinks by more than this missed the build's terser pass
 * (a second pass finds about 50 B; esbuild's output alone loses about 730 B). */
const REMINIFY_SLACK = 300;

const core = join(dirname(fileURLToPath(import.meta.url)), '../../packages/core');
const dist = join(core, 'dist');
const check = process.argv.includes('--check');
// terser is the core's own build tool (its devDependency); the options are the build's.
const { minify } = createRequire(join(core, 'package.json'))('terser');
const { terserOptions } = await import(join(core, 'scripts/terser-options.mjs'));

const fail = (message) => {
  console.error(`size: ${message}`);
  process.exit(1);
};
const iifeFile = existsSync(dist)
  ? readdirSync(dist).find((f) => f === 'cometkit.global.js')
  : undefined;
if (!existsSync(join(dist, 'index.js')) || !iifeFile)
  fail(`no build in ${dist}: run pnpm --filter @cometkit/core build`);

/** Newest modification time under `dir`. */
function newest(dir) {
  let time = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    time = Math.max(time, entry.isDirectory() ? newest(path) : statSync(path).mtimeMs);
  }
  return time;
}
// A dist/ older than src/ measures code that is no longer there.
if (
  Math.min(...['index.js', iifeFile].map((f) => statSync(join(dist, f)).mtimeMs)) <
  newest(join(core, 'src'))
)
  fail(`the build in ${dist} is older than src/: run pnpm --filter @cometkit/core build`);

const gzip = (text) => gzipSync(text, { level: 9 }).length;
const read = (file) => ({
  code: readFileSync(join(dist, file), 'utf8').replace(/\n\/\/# sourceMappingURL=.*\s*$/, '\n'),
  map: readFileSync(join(dist, `${file}.map`), 'utf8'),
});
/** `input` minified with the build's terser options, source map carried through. */
async function terse(file, input, esm) {
  const out = await minify(
    { [file]: input.code },
    { ...terserOptions({ esm, toplevel: esm }), sourceMap: { content: input.map } },
  );
  return { code: out.code, map: out.map };
}

// The ESM entry is self-contained (no shared chunk): dist/index.js is the whole of it.
const esm = await terse('index.js', read('index.js'), true);
const iife = read(iifeFile);
// The IIFE as a page downloads it, its sourceMappingURL comment included.
const sizes = { esm: gzip(esm.code), iife: gzip(readFileSync(join(dist, iifeFile), 'utf8')) };
const again = gzip((await terse(iifeFile, iife, false)).code);

const rows = [
  ['ESM own code (deps external)', 'index.js, minified here', sizes.esm, BUDGETS.esm],
  ['IIFE all-in', `${iifeFile}, as shipped`, sizes.iife, BUDGETS.iife],
];
for (const [name, what, bytes, budget] of rows)
  console.log(
    `${name.padEnd(30)} ${String(bytes).padStart(6)} B gzip  budget ${budget} B  ${bytes <= budget ? 'ok' : 'OVER'}  (${what})`,
  );

const problems = [];
if (sizes.iife - again > REMINIFY_SLACK)
  problems.push(
    `${iifeFile} is ${sizes.iife} B gzip but ${again} B after terser: it missed the build's terser pass (a failed or partial build?); rebuild with pnpm --filter @cometkit/core build`,
  );
for (const [name, , bytes, budget] of rows)
  if (bytes > budget)
    problems.push(
      `${name} is ${bytes} B gzip, over its budget of ${budget} B by ${bytes - budget} B (docs/decisions.md, Size: the budgets stop growth; make room or take a product decision)`,
    );
if (problems.length > 0) fail(problems.join('\nsize: '));
if (check) process.exit(0);

// Presence is its own entry point (@cometkit/core/presence, presence.global.js): outside the
// budgets above, paid only by pages that import it.
if (existsSync(join(dist, 'presence.js'))) {
  const presence = gzip((await terse('presence.js', read('presence.js'), true)).code);
  const presenceIife = gzip(readFileSync(join(dist, 'presence.global.js'), 'utf8'));
  console.log(
    `presence entry (not budgeted)  ${String(presence).padStart(6)} B gzip ESM, ${presenceIife} B gzip IIFE (presence.global.js)`,
  );
}

// Sharing between tabs too (@cometkit/core/share, share.global.js); the ESM entry imports the
// client from ./index.js (external), so this is what it adds to a bundle that has the client.
if (existsSync(join(dist, 'share.js'))) {
  const share = gzip((await terse('share.js', read('share.js'), true)).code);
  const shareIife = gzip(readFileSync(join(dist, 'share.global.js'), 'utf8'));
  console.log(
    `share entry (not budgeted)     ${String(share).padStart(6)} B gzip ESM, ${shareIife} B gzip IIFE (share.global.js)`,
  );
}

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
/** Output text per source file, from the output's source map (VLQ mappings). */
function bytesBySource({ code: text, map: mapJson }) {
  const code = text.split('\n');
  const map = JSON.parse(mapJson);
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
function breakdown(title, output) {
  const groups = new Map();
  const own = new Map();
  for (const [source, text] of bytesBySource(output)) {
    const group = groupOf(source);
    groups.set(group, (groups.get(group) ?? '') + text);
    // (Dependencies' own source maps name their src/ files too: not ours.)
    const module = group.startsWith('own') && /src\/(.+)$/.exec(source)?.[1];
    if (module) own.set(module, (own.get(module) ?? 0) + text.length);
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
      `    dependencies together: ${floor} B gzip: the IIFE budget leaves ${BUDGETS.iife - floor} B for own code and glue`,
    );
  }
  const top = [...own].sort((a, b) => b[1] - a[1]);
  console.log(`    own code by module (B min): ${top.map(([m, n]) => `${m} ${n}`).join(', ')}`);
}
console.log('where the bytes go (source maps):');
breakdown('IIFE', iife);
breakdown('ESM (minified here)', esm);
