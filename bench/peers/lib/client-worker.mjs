// Client process of the peers suite: starts N clients of one system (its own client library)
// with bounded concurrency and records every receipt against the shared clock. Adapted from the
// workplace harness (shared/peers/lib/client-worker.mjs).
import { pathToFileURL } from 'node:url';
import { nowMs, sleep, summarize } from './clock.mjs';
import { serve } from './ipc.mjs';
import { profileHandlers } from './profile.mjs';

const [, , modPath] = process.argv;
const sys = (await import(pathToFileURL(modPath).href)).default;
const clients = [];
let lastRecv = 0;
let armed = false;
let armTime = 0;
const cpuMs = () => {
  const c = process.cpuUsage();
  return (c.user + c.system) / 1000;
};

function newRec() {
  return { seen: new Map(), dup: 0, ooo: 0, maxSeq: -1, first: 0, last: 0 };
}
function onMsgFor(c) {
  return (_topic, data) => {
    const t = nowMs();
    const r = c.rec;
    if (!data || typeof data.seq !== 'number') return;
    if (r.seen.has(data.seq)) {
      r.dup++;
      return;
    }
    if (data.seq < r.maxSeq) r.ooo++;
    else r.maxSeq = data.seq;
    r.seen.set(data.seq, t - data.ts);
    if (!r.first) r.first = t;
    r.last = t;
    lastRecv = t;
  };
}

async function withTimeout(p, ms, what) {
  let t;
  try {
    return await Promise.race([
      p,
      new Promise((_, rej) => {
        t = setTimeout(() => rej(new Error(`${what} timed out`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(t);
  }
}

serve({
  ...profileHandlers,
  ping: () => 'pong',
  cpu: () => cpuMs(),
  // Starts n clients, `concurrency` at a time; resolves when each is subscribed (or failed).
  async start({ url, topics, n, concurrency = 50, timeoutMs = 20000 }) {
    const t0 = nowMs();
    let ok = 0;
    const errors = [];
    let i = 0;
    async function lane() {
      while (i < n) {
        i++;
        const c = { rec: newRec(), h: null };
        try {
          c.h = await withTimeout(
            sys.startClient(url, topics, onMsgFor(c)),
            timeoutMs,
            'startClient',
          );
          clients.push(c);
          ok++;
        } catch (e) {
          if (errors.length < 5) errors.push(String(e.message || e));
        }
      }
    }
    await Promise.all(Array.from({ length: Math.min(concurrency, n) }, lane));
    return { ok, failed: n - ok, ms: nowMs() - t0, errors };
  },
  reset() {
    for (const c of clients) c.rec = newRec();
    armed = false;
    lastRecv = 0;
    return true;
  },
  arm() {
    armed = true;
    armTime = nowMs();
    return true;
  },
  // Waits until every client has >= k distinct messages, or (once armed) nothing arrived for
  // idleMs, or timeoutMs passed.
  async waitFor({ k, timeoutMs, idleMs }) {
    const t0 = nowMs();
    for (;;) {
      let done = 0;
      for (const c of clients) if (c.rec.seen.size >= k) done++;
      if (done === clients.length) return { reason: 'complete', ms: nowMs() - t0 };
      const now = nowMs();
      if (armed && now - Math.max(lastRecv, armTime) > idleMs)
        return { reason: 'idle', ms: now - t0 };
      if (now - t0 > timeoutMs) return { reason: 'timeout', ms: now - t0 };
      await sleep(10);
    }
  },
  report({ kind, expected, seq }) {
    if (kind === 'stream') {
      const c = clients[0];
      if (!c) return { received: 0, lost: expected, dup: 0, ooo: 0, lat: summarize([]) };
      const r = c.rec;
      return {
        received: r.seen.size,
        lost: expected - r.seen.size,
        dup: r.dup,
        ooo: r.ooo,
        first: r.first,
        last: r.last,
        lat: summarize([...r.seen.values()]),
      };
    }
    if (kind === 'fanout') {
      const lats = [];
      let dup = 0;
      for (const c of clients) {
        const v = c.rec.seen.get(seq);
        if (v !== undefined) lats.push(v);
        dup += c.rec.dup;
      }
      return { clients: clients.length, received: lats.length, dup, lat: summarize(lats) };
    }
    throw new Error('unknown report kind');
  },
  async close() {
    await Promise.race([Promise.allSettled(clients.map((c) => c.h?.close())), sleep(3000)]);
    setTimeout(() => process.exit(0), 20);
    return true;
  },
});
process.send({ ready: true });
