/**
 * cometkit against its peers (Socket.IO, SockJS, Faye) with each library's own client and
 * default options, long-poll only, in one run: the way a user compares libraries (issue 17).
 * The scenarios are those of the workplace harness (shared/peers), copied into bench/peers/.
 *
 * Run alone:  pnpm build && node --expose-gc bench/suites/peers.mjs   (or `pnpm bench peers`)
 * Quick:      BENCH_PEERS_QUICK=1 (50 latency msgs, a 2 000 burst, fan-out to 100, 2 rounds)
 * Choose:     BENCH_PEERS_SYSTEMS=cometkit,sockjs (default: cometkit,socketio,faye,sockjs;
 *             `all` adds the diagnostics cometkit-h25k, cometkit-nodehttp, naive-comet,
 *             naive-comet-nodehttp)
 *             BENCH_PEERS_SCENARIOS=A,C   BENCH_PEERS_RUNS=3 (default 1)
 *             BENCH_PEERS_FANOUT=1000 BENCH_PEERS_ROUNDS=5
 * Profiles:   BENCH_PEERS_PROFILE=dir writes .cpuprofile files of scenario B's burst, C's connect phase and
 *             its rounds, of both the server and the client process (inspector, sampled every
 *             200 µs); BENCH_PEERS_CPU_PROF=dir runs both workers with `node --cpu-prof` instead
 *             (whole processes). Summarise with `node bench/peers/profile-summary.mjs FILE`.
 * Output:     a markdown table per scenario, then every headline figure with cometkit's ratio to
 *             the best peer; BENCH_PEERS_JSON=file also writes every run's raw figures.
 *
 * Scenarios (per system, server and clients in two processes on 127.0.0.1, one shared clock):
 * - A latency: 1 client, 400 ~100-byte messages, one every 20 ms; p50/p95/p99/max, lost.
 * - B burst: 1 client, 20 000 ~100-byte messages as fast as possible (a setImmediate every 100);
 *   time to the last receipt, msgs/s, lost.
 * - C fan-out: 1 000 clients (50 connecting at a time) hold a poll on one topic; one message,
 *   5 rounds, medians: p50/p99/max, server CPU per round, connect time, server RSS and heap per
 *   held client ((held - idle) / N, both after gc()).
 * Bounded: fixed counts, a hard limit per scenario (A 60 s, B 70 s, C 300 s) and for the whole
 * suite (BENCH_PEERS_LIMIT_S, default 1 200), RPC timeouts, workers SIGKILLed if they linger.
 * Speed is printed, never asserted: the suite fails only when it cannot run at all.
 */
import { fork } from 'node:child_process';
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { median, nowMs, sleep } from '../peers/lib/clock.mjs';
import { rpc } from '../peers/lib/ipc.mjs';

export const name = 'peers';

const here = path.dirname(fileURLToPath(import.meta.url));
const peersDir = path.join(here, '..', 'peers');
const systemsDir = path.join(peersDir, 'systems');
const env = process.env;

const quick = env.BENCH_PEERS_QUICK === '1';
const SCENARIOS = (env.BENCH_PEERS_SCENARIOS || 'A,B,C').toUpperCase().split(',');
const RUNS = Math.max(1, Math.min(5, Number(env.BENCH_PEERS_RUNS || 1)));
const FANOUT = Math.min(5000, Number(env.BENCH_PEERS_FANOUT || (quick ? 100 : 1000)));
const ROUNDS = Math.min(10, Number(env.BENCH_PEERS_ROUNDS || (quick ? 2 : 5)));
const A_COUNT = quick ? 50 : 400;
const A_INTERVAL = 20;
const B_COUNT = quick ? 2000 : 20000;
const B_BATCH = 100;
const B_LIMIT_MS = 30000;
const PAD = 60; // => a ~100-byte JSON payload {"seq":..,"ts":..,"p":"xxx.."}
const SUITE_LIMIT_MS = Number(env.BENCH_PEERS_LIMIT_S || 1200) * 1000;
const PROFILE_DIR = env.BENCH_PEERS_PROFILE ? path.resolve(env.BENCH_PEERS_PROFILE) : null;
const CPU_PROF_DIR = env.BENCH_PEERS_CPU_PROF ? path.resolve(env.BENCH_PEERS_CPU_PROF) : null;

const PEERS = ['socketio', 'faye', 'sockjs'];
const DIAGNOSTICS = ['cometkit-h25k', 'cometkit-nodehttp', 'naive-comet', 'naive-comet-nodehttp'];
const available = readdirSync(systemsDir)
  .filter((f) => f.endsWith('.mjs'))
  .map((f) => f.replace(/\.mjs$/, ''));
const wanted = env.BENCH_PEERS_SYSTEMS || 'cometkit,socketio,faye,sockjs';
const SYSTEMS =
  wanted === 'all' ? ['cometkit', ...PEERS, ...DIAGNOSTICS] : wanted.split(',').filter(Boolean);
for (const s of SYSTEMS) {
  if (!available.includes(s)) throw new Error(`unknown system ${s} (have ${available.join(', ')})`);
}

/** Every worker this run started: killed on any exit path. */
const children = new Set();
process.on('exit', () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

function spawnWorker(file, argv, execArgv, label) {
  const child = fork(path.join(peersDir, 'lib', file), argv, {
    execArgv,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  children.add(child);
  child.once('exit', () => children.delete(child));
  const ready = new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`${label} did not start`)), 15000);
    child.once('message', (m) => {
      clearTimeout(t);
      m?.ready ? resolve() : reject(new Error(`${label} bad hello`));
    });
    child.once('exit', (c) => {
      clearTimeout(t);
      reject(new Error(`${label} exited early (${c})`));
    });
  });
  return { child, call: rpc(child, label), ready };
}

async function stopWorker(w) {
  if (!w || w.child.exitCode !== null) return;
  try {
    await w.call('close', {}, 5000);
  } catch {}
  const deadline = Date.now() + 3000;
  while (w.child.exitCode === null && w.child.signalCode === null && Date.now() < deadline) {
    await sleep(50);
  }
  if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill('SIGKILL');
}

function cpuProfArgs(label) {
  // BENCH_PEERS_WORKER_FLAGS: more Node flags for both workers (e.g. `--trace-gc`).
  const extra = (env.BENCH_PEERS_WORKER_FLAGS ?? '').split(' ').filter(Boolean);
  if (!CPU_PROF_DIR) return extra;
  mkdirSync(CPU_PROF_DIR, { recursive: true });
  return [
    ...extra,
    '--cpu-prof',
    `--cpu-prof-dir=${CPU_PROF_DIR}`,
    `--cpu-prof-name=${label}.cpuprofile`,
  ];
}

async function withPair(sysName, tag, fn, limitMs) {
  const modPath = path.join(systemsDir, `${sysName}.mjs`);
  const port = await freePort();
  const srv = spawnWorker(
    'server-worker.mjs',
    [modPath, String(port)],
    ['--expose-gc', ...cpuProfArgs(`${tag}-${sysName}-server`)],
    `${sysName}/server`,
  );
  const cli = spawnWorker(
    'client-worker.mjs',
    [modPath],
    cpuProfArgs(`${tag}-${sysName}-client`),
    `${sysName}/client`,
  );
  let timer;
  try {
    await Promise.all([srv.ready, cli.ready]);
    const url = `http://127.0.0.1:${port}`;
    return await Promise.race([
      fn({ srv: srv.call, cli: cli.call, url }),
      new Promise((_, rej) => {
        timer = setTimeout(() => rej(new Error(`scenario hard limit ${limitMs} ms hit`)), limitMs);
      }),
    ]);
  } finally {
    clearTimeout(timer);
    await Promise.all([stopWorker(cli), stopWorker(srv)]);
  }
}

// Waits until the server reports >= n held polls (when the system counts them), then settles.
async function settle(srv, n, settleMs, maxMs = 15000) {
  const t0 = Date.now();
  for (;;) {
    const s = await srv('stats');
    if (s.held === undefined || s.held >= n || Date.now() - t0 > maxMs) break;
    await sleep(20);
  }
  await sleep(settleMs);
}

/** Starts a phase profile in both workers (BENCH_PEERS_PROFILE), returns its stop function. */
async function profilePhase(srv, cli, label) {
  if (!PROFILE_DIR) return async () => {};
  mkdirSync(PROFILE_DIR, { recursive: true });
  await Promise.all([srv('profStart'), cli('profStart')]);
  return async () => {
    await Promise.all([
      srv('profStop', { file: path.join(PROFILE_DIR, `${label}-server.cpuprofile`) }, 30000),
      cli('profStop', { file: path.join(PROFILE_DIR, `${label}-client.cpuprofile`) }, 30000),
    ]);
  };
}

const scenarios = {
  async A(sysName, run) {
    return withPair(
      sysName,
      `A${run}`,
      async ({ srv, cli, url }) => {
        const st = await cli('start', { url, topics: ['t'], n: 1, concurrency: 1 }, 20000);
        if (!st.ok) throw new Error(`client failed: ${st.errors.join('; ')}`);
        await settle(srv, 1, 500);
        const wf = cli(
          'waitFor',
          { k: A_COUNT, timeoutMs: A_COUNT * A_INTERVAL + 5000, idleMs: 2000 },
          60000,
        );
        const em = await srv(
          'series',
          { topic: 't', count: A_COUNT, intervalMs: A_INTERVAL, padLen: PAD },
          60000,
        );
        await cli('arm');
        const w = await wf;
        const r = await cli('report', { kind: 'stream', expected: A_COUNT });
        return {
          sent: em.emitted,
          received: r.received,
          lost: r.lost,
          dup: r.dup,
          ooo: r.ooo,
          p50: r.lat.p50,
          p95: r.lat.p95,
          p99: r.lat.p99,
          max: r.lat.max,
          end: w.reason,
        };
      },
      60000,
    );
  },
  async B(sysName, run) {
    return withPair(
      sysName,
      `B${run}`,
      async ({ srv, cli, url }) => {
        const st = await cli('start', { url, topics: ['t'], n: 1, concurrency: 1 }, 20000);
        if (!st.ok) throw new Error(`client failed: ${st.errors.join('; ')}`);
        await settle(srv, 1, 500);
        const stopBurst = await profilePhase(srv, cli, `B${run}-${sysName}-burst`);
        const c0 = await cli('cpu');
        const s0 = await srv('cpu');
        const wf = cli(
          'waitFor',
          { k: B_COUNT, timeoutMs: B_LIMIT_MS, idleMs: 2000 },
          B_LIMIT_MS + 10000,
        );
        const em = await srv(
          'burst',
          { topic: 't', count: B_COUNT, batch: B_BATCH, padLen: PAD },
          B_LIMIT_MS + 10000,
        );
        await cli('arm');
        const w = await wf;
        const c1 = await cli('cpu');
        const s1 = await srv('cpu');
        await stopBurst();
        const r = await cli('report', { kind: 'stream', expected: B_COUNT });
        const durMs = r.last ? r.last - em.t0 : null;
        return {
          sent: em.emitted,
          received: r.received,
          lost: r.lost,
          dup: r.dup,
          ooo: r.ooo,
          emitMs: em.t1 - em.t0,
          durMs,
          msgsPerS: durMs ? r.received / (durMs / 1000) : 0,
          complete: r.received === B_COUNT,
          end: w.reason,
          serverCpuMs: s1 - s0,
          clientCpuMs: c1 - c0,
        };
      },
      B_LIMIT_MS + 40000,
    );
  },
  async C(sysName, run) {
    return withPair(
      sysName,
      `C${run}`,
      async ({ srv, cli, url }) => {
        const memIdle = await srv('mem');
        const stopConnect = await profilePhase(srv, cli, `C${run}-${sysName}-connect`);
        const st = await cli(
          'start',
          { url, topics: ['t'], n: FANOUT, concurrency: 50, timeoutMs: 30000 },
          150000,
        );
        if (!st.ok) throw new Error(`no client connected: ${st.errors.join('; ')}`);
        await settle(srv, st.ok, 0);
        const c0 = await cli('cpu');
        await stopConnect();
        await sleep(1500);
        const memHeld = await srv('mem');
        const rounds = [];
        const stopRounds = await profilePhase(srv, cli, `C${run}-${sysName}-rounds`);
        for (let r = 0; r < ROUNDS; r++) {
          await cli('reset');
          const s0 = await srv('cpu');
          const k0 = await cli('cpu');
          const wf = cli('waitFor', { k: 1, timeoutMs: 15000, idleMs: 3000 }, 30000);
          await srv('one', { topic: 't', seq: r });
          await cli('arm');
          const w = await wf;
          // The re-polls after delivery are part of a round's cost: the same quiet 500 ms for
          // every system (not all of them count held polls).
          await sleep(500);
          const s1 = await srv('cpu');
          const k1 = await cli('cpu');
          const rep = await cli('report', { kind: 'fanout', seq: r });
          rounds.push({
            received: rep.received,
            p50: rep.lat.p50,
            p99: rep.lat.p99,
            max: rep.lat.max,
            end: w.reason,
            serverCpuMs: s1 - s0,
            clientCpuMs: k1 - k0,
          });
          await settle(srv, st.ok, 1000);
        }
        await stopRounds();
        const pick = (k) => median(rounds.map((x) => x[k]));
        return {
          n: FANOUT,
          connected: st.ok,
          connectMs: st.ms,
          connectClientCpuMs: c0,
          connectErrors: st.errors.slice(0, 2),
          receivedMin: Math.min(...rounds.map((x) => x.received)),
          p50: pick('p50'),
          p99: pick('p99'),
          max: pick('max'),
          serverCpuMs: pick('serverCpuMs'),
          clientCpuMs: pick('clientCpuMs'),
          rssPerClientKB: (memHeld.rss - memIdle.rss) / st.ok / 1024,
          heapPerClientKB: (memHeld.heapUsed - memIdle.heapUsed) / st.ok / 1024,
          rssIdleMB: memIdle.rss / 1048576,
          rssHeldMB: memHeld.rss / 1048576,
          rounds,
        };
      },
      300000,
    );
  },
};

// ---------- run ----------
const results = {}; // results[scenario][system] = [runResult...]
const t0 = nowMs();
console.log(
  `systems ${SYSTEMS.join(', ')}; scenarios ${SCENARIOS.join(', ')}; runs ${RUNS}; fan-out ${FANOUT} x ${ROUNDS} rounds${quick ? ' (quick)' : ''}; ${os.cpus().length} cores, load ${os
    .loadavg()
    .map((l) => l.toFixed(1))
    .join(' ')}`,
);
outer: for (let run = 0; run < RUNS; run++) {
  // Rotate the order per run so slow drift on a shared host does not always hit one system.
  const order = SYSTEMS.map((_, i) => SYSTEMS[(i + run) % SYSTEMS.length]);
  for (const sc of SCENARIOS) {
    for (const sys of order) {
      if (nowMs() - t0 > SUITE_LIMIT_MS) {
        console.log(`suite limit of ${SUITE_LIMIT_MS / 1000} s reached: the rest is skipped`);
        break outer;
      }
      const t = nowMs();
      let res;
      try {
        res = await scenarios[sc](sys, run + 1);
      } catch (e) {
        res = { error: String(e.message || e).split('\n')[0] };
      }
      results[sc] ??= {};
      results[sc][sys] ??= [];
      results[sc][sys].push(res);
      const brief = JSON.stringify(res, (k, v) =>
        k === 'rounds' ? undefined : typeof v === 'number' ? Math.round(v * 100) / 100 : v,
      );
      console.log(
        `run ${run + 1}/${RUNS} ${sc} ${sys}: ${((nowMs() - t) / 1000).toFixed(1)} s ${brief}`,
      );
      await sleep(500);
    }
  }
}

// ---------- report ----------
const num = (x, d = 1) =>
  x === null || x === undefined || !Number.isFinite(x) ? '–' : x.toFixed(d);
const values = (sc, sys, key) =>
  (results[sc]?.[sys] ?? [])
    .filter((r) => !r.error)
    .map((r) => r[key])
    .filter((v) => typeof v === 'number' && Number.isFinite(v));
function cell(sc, sys, key, d) {
  const vals = values(sc, sys, key);
  if (!vals.length) return results[sc]?.[sys]?.some((r) => r.error) ? 'error' : '–';
  const m = median(vals);
  if (vals.length === 1) return num(m, d);
  return `${num(m, d)} (${num(Math.min(...vals), d)}–${num(Math.max(...vals), d)})`;
}
const lines = [];
function table(sc, title, cols) {
  if (!results[sc]) return;
  lines.push(
    `### ${title}`,
    '',
    `| system | ${cols.map((c) => c[0]).join(' | ')} |`,
    `|---|${cols.map(() => '---:').join('|')}|`,
  );
  for (const sys of SYSTEMS) {
    const runs = results[sc][sys];
    if (!runs) continue;
    lines.push(`| ${sys} | ${cols.map(([, k, d]) => cell(sc, sys, k, d)).join(' | ')} |`);
    for (const r of runs)
      if (r.error) lines.push(`| ${sys} | error: ${r.error.replace(/\|/g, '/')} |`);
  }
  lines.push('');
}
lines.push(`Cells: median across ${RUNS} run(s) (min–max). Latencies in ms.`, '');
table('A', `A. Latency (1 client, ${A_COUNT} msgs every ${A_INTERVAL} ms)`, [
  ['p50 ms', 'p50', 2],
  ['p95 ms', 'p95', 2],
  ['p99 ms', 'p99', 2],
  ['max ms', 'max', 2],
  ['received', 'received', 0],
  ['lost', 'lost', 0],
  ['dup', 'dup', 0],
  ['out-of-order', 'ooo', 0],
]);
table('B', `B. Burst (1 client, ${B_COUNT} x ~100 B msgs, limit ${B_LIMIT_MS / 1000} s)`, [
  ['time to last msg ms', 'durMs', 0],
  ['msgs/s received', 'msgsPerS', 0],
  ['received', 'received', 0],
  ['lost', 'lost', 0],
  ['dup', 'dup', 0],
  ['emit loop ms', 'emitMs', 0],
  ['server CPU ms', 'serverCpuMs', 0],
  ['client CPU ms', 'clientCpuMs', 0],
]);
table('C', `C. Fan-out (N=${FANOUT} clients, 1 msg, median of ${ROUNDS} rounds)`, [
  ['connected', 'connected', 0],
  ['min received', 'receivedMin', 0],
  ['p50 ms', 'p50', 1],
  ['p99 ms', 'p99', 1],
  ['max ms', 'max', 1],
  ['server CPU ms/round', 'serverCpuMs', 0],
  ['client CPU ms/round', 'clientCpuMs', 0],
  ['RSS KB/client', 'rssPerClientKB', 1],
  ['heap KB/client', 'heapPerClientKB', 1],
  ['connect all ms', 'connectMs', 0],
  ['client CPU ms to connect', 'connectClientCpuMs', 0],
]);

// Headline figures: cometkit against the best peer of this run (ratio > 1: cometkit is worse).
const HEADLINES = [
  ['A latency p50 ms', 'A', 'p50', 'low'],
  ['A latency p99 ms', 'A', 'p99', 'low'],
  ['B burst received', 'B', 'received', 'high'],
  ['B burst msgs/s', 'B', 'msgsPerS', 'high'],
  ['C fan-out p50 ms', 'C', 'p50', 'low'],
  ['C fan-out p99 ms', 'C', 'p99', 'low'],
  ['C connect all ms', 'C', 'connectMs', 'low'],
  ['C server CPU ms/round', 'C', 'serverCpuMs', 'low'],
  ['C server RSS KB/held client', 'C', 'rssPerClientKB', 'low'],
  ['C server heap KB/held client', 'C', 'heapPerClientKB', 'low'],
];
const peersHere = SYSTEMS.filter((s) => PEERS.includes(s));
if (SYSTEMS.includes('cometkit') && peersHere.length) {
  lines.push(
    '### cometkit against the best peer',
    '',
    `| figure | cometkit | ${peersHere.join(' | ')} | best peer | cometkit ÷ best (worse when) |`,
    `|---|---:|${peersHere.map(() => '---:').join('|')}|---|---:|`,
  );
  for (const [label, sc, key, better] of HEADLINES) {
    if (!results[sc]) continue;
    const m = (sys) => median(values(sc, sys, key));
    const ours = m('cometkit');
    const peerVals = peersHere.map((s) => [s, m(s)]).filter(([, v]) => v !== null);
    if (!peerVals.length) continue;
    const [bestName, best] = peerVals.reduce((a, b) =>
      (better === 'low' ? b[1] < a[1] : b[1] > a[1]) ? b : a,
    );
    const ratio = ours !== null && best ? ours / best : null;
    const d = key === 'received' || key === 'msgsPerS' || key === 'connectMs' ? 0 : 1;
    lines.push(
      `| ${label} | ${num(ours, d)} | ${peersHere.map((s) => num(m(s), d)).join(' | ')} | ${bestName} | ${num(ratio, 2)} (${better === 'low' ? '> 1' : '< 1'}) |`,
    );
  }
  lines.push('');
}
console.log(`\n${lines.join('\n')}`);
console.log(`total ${((nowMs() - t0) / 1000).toFixed(0)} s`);
if (env.BENCH_PEERS_JSON) {
  const file = path.resolve(env.BENCH_PEERS_JSON);
  mkdirSync(path.dirname(file), { recursive: true });
  const params = { A_COUNT, A_INTERVAL, B_COUNT, B_BATCH, PAD, FANOUT, ROUNDS, RUNS, quick };
  writeFileSync(file, JSON.stringify({ params, node: process.version, results }, null, 1));
}
const ran = Object.values(results).flatMap((bySys) => Object.values(bySys).flat());
process.exitCode = ran.length > 0 && ran.every((r) => r.error) ? 1 : 0;
