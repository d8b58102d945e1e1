/**
 * 10 000 held long-polls on one server process (issue 17): the fan-out of one message to all of
 * them (p50/p99 from the publish to each answer's first byte), the server's RSS and heap while
 * they are held, its CPU per round, printed against the targets (p99 <= 500 ms, RSS <= 150 MB).
 * The same figures at 1 000 and 4 000 first, with the cost per held poll, so that anything that
 * grows worse than linearly shows. Speed is printed, never asserted.
 *
 * Run alone:  pnpm --filter @cometkit/server build && node --expose-gc bench/suites/scale.mjs
 * Sizes:      BENCH_SCALE=1000,4000,10000 (default); BENCH_SCALE_ROUNDS=5
 * Flags:      BENCH_SERVER_FLAGS='--max-semi-space-size=1' for the server processes (both the
 *             cometkit and the bare one), as long-poll.mjs
 * Floor:      the RSS of 10 000 held polls is also measured against a bare node:http server that
 *             holds as many requests unanswered (long-poll.mjs `memory`, after a warm-up): what
 *             Node itself needs per held request, whatever the library does.
 *
 * The server (built `@cometkit/server`, default options, memory broker) runs alone in a child
 * process (long-poll.mjs's `--child-server`); the clients are raw keep-alive sockets in this one
 * (long-poll.mjs `fanout`), one socket each, so each process needs an open file per client: below
 * that limit the suite runs itself again under `ulimit -n` (raised up to the hard limit).
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { fanout, memory } from './long-poll.mjs';

export const name = 'scale';

const SIZES = (process.env.BENCH_SCALE ?? '1000,4000,10000').split(',').map(Number);
const ROUNDS = Number(process.env.BENCH_SCALE_ROUNDS ?? 5);
const TARGETS = { p99: 500, rssMB: 150 };

function openFileLimit() {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('Max open files'));
    const [soft, hard] = (line ?? '').split(/\s{2,}/).slice(1, 3);
    const num = (v) => (v === undefined || v === 'unlimited' ? Infinity : Number(v));
    return { soft: num(soft), hard: num(hard) };
  } catch {
    return { soft: Infinity, hard: Infinity };
  }
}

const fmt = (value, digits = 1) =>
  value.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: 0 });

export async function run({ print = true } = {}) {
  const rows = [];
  for (const clients of SIZES) {
    const figures = await fanout({ clients, rounds: ROUNDS, warm: 2 });
    rows.push(figures);
    if (print) console.log(`${clients} held: ${JSON.stringify(figures)}`);
  }
  const top = Math.max(...SIZES);
  const steps = [Math.min(4000, top), top].filter((n, i, all) => all.indexOf(n) === i);
  const held = {};
  for (const mode of ['comet', 'bare']) {
    const figures = await memory({ mode, steps });
    const last = figures.steps.at(-1);
    held[mode] = {
      rssMB: (figures.base.rss + last.rss) / 2 ** 20,
      heapMB: (figures.base.heap + last.heap) / 2 ** 20,
      baseMB: figures.base.rss / 2 ** 20,
      kbPerPoll: figures.bytesPerPoll / 1024,
    };
  }
  if (print) {
    console.log(`\nmemory with ${top} held (after a warm-up; bare = node:http holding requests):`);
    console.table(
      Object.entries(held).map(([mode, m]) => ({
        server: mode,
        'RSS MB': fmt(m.rssMB),
        'heap MB': fmt(m.heapMB),
        'RSS MB before': fmt(m.baseMB),
        'KB per poll (slope)': fmt(m.kbPerPoll),
      })),
    );
    const flags = process.env.BENCH_SERVER_FLAGS ? `, node ${process.env.BENCH_SERVER_FLAGS}` : '';
    console.log(
      `\n10 000 held long-polls on one process (server: default options, memory broker${flags})`,
    );
    console.table(
      rows.map((r) => ({
        held: r.clients,
        'p50 ms': fmt(r.p50),
        'p99 ms': fmt(r.p99),
        'max ms': fmt(r.max),
        'µs per answer at p99': fmt((r.p99 * 1000) / r.clients, 0),
        'server CPU ms/round': fmt(r.cpuMsPerRound, 0),
        'µs CPU per answer': fmt((r.cpuMsPerRound * 1000) / r.clients, 0),
        'RSS MB held': fmt(r.rssMB),
        'KB RSS per held (over idle)': fmt(((r.rssMB - r.rssIdleMB) * 1024) / r.clients),
        'heap MB': fmt(r.heapMB),
        'connect ms': fmt(r.connectMs, 0),
      })),
    );
    const most = rows.find((r) => r.clients === 10_000);
    if (most) {
      console.log(
        `10 000 held: p99 ${fmt(most.p99)} ms (target <= ${TARGETS.p99}: ${most.p99 <= TARGETS.p99 ? 'ok' : 'MISSED'}), RSS ${fmt(most.rssMB)} MB (target <= ${TARGETS.rssMB}: ${most.rssMB <= TARGETS.rssMB ? 'ok' : 'MISSED'})`,
      );
    }
  }
  return { rows, held };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const need = Math.max(...SIZES) + 512;
  const { soft, hard } = openFileLimit();
  if (soft < need && !process.env.BENCH_SCALE_REEXEC) {
    if (hard < need) {
      console.error(`scale: needs ${need} open files, the hard limit is ${hard}`);
      process.exit(1);
    }
    const script = fileURLToPath(import.meta.url);
    const result = spawnSync(
      'sh',
      ['-c', `ulimit -n ${need} && exec "$0" --expose-gc "$1"`, process.execPath, script],
      { stdio: 'inherit', env: { ...process.env, BENCH_SCALE_REEXEC: '1' } },
    );
    process.exit(result.status ?? 1);
  }
  const overall = setTimeout(() => {
    console.error('scale bench: over 540 s, stopping');
    process.exit(1);
  }, 540_000);
  overall.unref();
  try {
    await run();
    process.exit(0);
  } catch (error) {
    console.error(error);
    process.exit(1);
  }
}
