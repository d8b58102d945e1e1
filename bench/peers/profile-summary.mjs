/**
 * Summarises a V8 .cpuprofile (from `node --cpu-prof` or the peers suite's BENCH_PEERS_PROFILE):
 * where the samples' time went by owner (ky, @cometkit/core, Node's bundled undici behind fetch,
 * node:http, other node internals, GC, idle), the top functions by self time, and the top
 * functions by total time (self + callees, each function counted once per sample).
 *
 * Usage: node bench/peers/profile-summary.mjs FILE.cpuprofile [--top 25] [--match text]
 *        (--match keeps only functions whose name or file contains `text` in the lists)
 */
import { readFileSync } from 'node:fs';

const args = process.argv.slice(2);
const file = args.find((a) => !a.startsWith('--') && !/^\d+$/.test(a));
const opt = (name, fallback) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] ? args[i + 1] : fallback;
};
const TOP = Number(opt('top', 25));
const MATCH = opt('match', '');
if (!file) {
  console.error('usage: node profile-summary.mjs FILE.cpuprofile [--top 25] [--match text]');
  process.exit(2);
}

const profile = JSON.parse(readFileSync(file, 'utf8'));
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const parent = new Map();
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

/** Who a frame belongs to, from its script URL. */
function owner(frame) {
  const url = frame.url ?? '';
  const fn = frame.functionName;
  if (!url) {
    if (fn === '(garbage collector)') return 'GC';
    if (fn === '(idle)') return 'idle';
    if (fn === '(program)') return 'program (V8/native, unattributed)';
    return `native ${fn || '(anonymous)'}`;
  }
  const pkg = url.match(/node_modules\/(?:\.pnpm\/[^/]+\/node_modules\/)?((?:@[^/]+\/)?[^/]+)/);
  if (pkg) return pkg[1];
  const ours = url.match(/packages\/([^/]+)\/dist\//);
  if (ours) return `@cometkit/${ours[1]}`;
  if (url.includes('bench/peers/')) return 'bench harness';
  if (url.startsWith('node:internal/deps/undici')) return 'node fetch (bundled undici)';
  if (
    /^node:internal\/(http|_http|streams|stream_base|net|dns)|^node:(_)?http|^node:net/.test(url)
  ) {
    return 'node:http/net/streams';
  }
  if (url.startsWith('node:')) return 'other node internals';
  return url;
}
const label = (f) => {
  const url = (f.url ?? '').replace(/^.*node_modules\/(\.pnpm\/[^/]+\/node_modules\/)?/, '');
  return `${f.functionName || '(anonymous)'} ${url ? `${url.replace(/^file:\/\/.*\/(packages|bench)\//, '$1/')}:${f.lineNumber + 1}` : ''}`.trim();
};

const self = new Map();
const total = new Map();
const owners = new Map();
let sum = 0;
const { samples, timeDeltas } = profile;
for (let i = 0; i < samples.length; i++) {
  const dt = (timeDeltas[i + 1] ?? timeDeltas[i] ?? 0) / 1000; // ms spent at this sample
  sum += dt;
  const leaf = byId.get(samples[i]);
  const k = label(leaf.callFrame);
  self.set(k, (self.get(k) ?? 0) + dt);
  const o = owner(leaf.callFrame);
  owners.set(o, (owners.get(o) ?? 0) + dt);
  const seen = new Set();
  for (let id = samples[i]; id !== undefined; id = parent.get(id)) {
    const key = label(byId.get(id).callFrame);
    if (seen.has(key)) continue;
    seen.add(key);
    total.set(key, (total.get(key) ?? 0) + dt);
  }
}
const busy = sum - (owners.get('idle') ?? 0);
const pct = (v) => `${((100 * v) / busy).toFixed(1).padStart(5)} %`;
const ms = (v) => `${v.toFixed(1).padStart(8)} ms`;
console.log(`${file}: ${sum.toFixed(0)} ms sampled, ${busy.toFixed(0)} ms busy (not idle)\n`);
console.log('By owner (self time; % of busy):');
for (const [k, v] of [...owners].sort((a, b) => b[1] - a[1])) {
  if (k !== 'idle') console.log(`${ms(v)} ${pct(v)}  ${k}`);
}
const list = (title, map) => {
  console.log(`\n${title}:`);
  const rows = [...map]
    .filter(([k]) => k !== '(idle)' && k !== '(root)' && (!MATCH || k.includes(MATCH)))
    .sort((a, b) => b[1] - a[1])
    .slice(0, TOP);
  for (const [k, v] of rows) console.log(`${ms(v)} ${pct(v)}  ${k}`);
};
list(`Top ${TOP} by self time`, self);
list(`Top ${TOP} by total time`, total);
