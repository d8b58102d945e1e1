// Server process of the peers suite: loads one system module, starts its server on loopback and
// publishes on command (paced series, burst, one fan-out message); reports CPU, memory and the
// system's stats. Adapted from the workplace harness (shared/peers/lib/server-worker.mjs).
import { pathToFileURL } from 'node:url';
import { nowMs, sleep } from './clock.mjs';
import { serve } from './ipc.mjs';
import { profileHandlers } from './profile.mjs';

const [, , modPath, portStr] = process.argv;
const sys = (await import(pathToFileURL(modPath).href)).default;
const port = Number(portStr);

function mem() {
  if (globalThis.gc) {
    globalThis.gc();
    globalThis.gc();
  }
  const m = process.memoryUsage();
  return { rss: m.rss, heapUsed: m.heapUsed, external: m.external };
}
const cpuMs = () => {
  const c = process.cpuUsage();
  return (c.user + c.system) / 1000;
};

const handle = await sys.startServer(port);
const pad = (n) => 'x'.repeat(n);

serve({
  ...profileHandlers,
  ping: () => 'pong',
  mem,
  stats: () => ({ ...(handle.stats ? handle.stats() : {}), cpuMs: cpuMs() }),
  // Scenario A: paced publishes on an absolute schedule (no drift accumulates).
  async series({ topic, count, intervalMs, padLen }) {
    const p = pad(padLen);
    const c0 = cpuMs();
    const t0 = nowMs();
    for (let i = 0; i < count; i++) {
      const d = t0 + i * intervalMs - nowMs();
      if (d > 0) await sleep(d);
      handle.emit(topic, { seq: i, ts: nowMs(), p });
    }
    return { t0, t1: nowMs(), emitted: count, cpuMs: cpuMs() - c0 };
  },
  // Scenario B: publishes as fast as possible, yielding to the event loop every `batch`.
  async burst({ topic, count, batch, padLen }) {
    const p = pad(padLen);
    const c0 = cpuMs();
    const t0 = nowMs();
    for (let i = 0; i < count; i++) {
      handle.emit(topic, { seq: i, ts: nowMs(), p });
      if ((i + 1) % batch === 0) await new Promise((r) => setImmediate(r));
    }
    return { t0, t1: nowMs(), emitted: count, cpuMs: cpuMs() - c0 };
  },
  // Scenario C: one message to every subscriber of `topic`.
  one({ topic, seq }) {
    const ts = nowMs();
    handle.emit(topic, { seq, ts });
    return { ts };
  },
  cpu: () => cpuMs(),
  async close() {
    await Promise.race([Promise.resolve(handle.close()), sleep(3000)]);
    setTimeout(() => process.exit(0), 20);
    return true;
  },
});
process.send({ ready: true });
