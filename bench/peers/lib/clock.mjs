// The one clock of the peers suite: process.hrtime is CLOCK_MONOTONIC on Linux, system-wide, so
// a send time taken in the server process and a receive time taken in the client process compare
// directly. Milliseconds with µs resolution. Adapted from the workplace harness (shared/peers).
export const nowMs = () => Number(process.hrtime.bigint() / 1000n) / 1000;
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** The nearest-rank percentile of an ascending array; null when it is empty. */
export function percentile(sorted, p) {
  if (!sorted.length) return null;
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[idx];
}

/** Count, p50, p95, p99 and max of a list of latencies. */
export function summarize(values) {
  const s = [...values].sort((a, b) => a - b);
  return {
    n: s.length,
    p50: percentile(s, 50),
    p95: percentile(s, 95),
    p99: percentile(s, 99),
    max: s.length ? s[s.length - 1] : null,
  };
}

/** The median of the finite numbers in `values`; null when there are none. */
export function median(values) {
  const s = values.filter((v) => typeof v === 'number' && Number.isFinite(v)).sort((a, b) => a - b);
  if (!s.length) return null;
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}
