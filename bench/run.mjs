// Runs every bench/suites/*.mjs in turn, each in its own child process (a suite's memory and
// timers never affect the next). Exits non-zero if any suite failed. Usage: node run.mjs [name…]
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const only = process.argv.slice(2);
const suites = readdirSync(join(here, 'suites'))
  .filter((f) => f.endsWith('.mjs'))
  .filter((f) => only.length === 0 || only.includes(f.replace(/\.mjs$/, '')))
  .sort();

const SUITE_TIMEOUT_MS = 5 * 60_000;
// The peers suite runs four systems' servers and clients in turn; it bounds itself at 20 min.
const TIMEOUT_MS = { 'peers.mjs': 25 * 60_000, 'scale.mjs': 10 * 60_000 };
let failed = 0;
for (const suite of suites) {
  console.log(`\n## ${suite}`);
  const result = spawnSync(process.execPath, ['--expose-gc', join(here, 'suites', suite)], {
    stdio: 'inherit',
    timeout: TIMEOUT_MS[suite] ?? SUITE_TIMEOUT_MS,
  });
  if (result.status !== 0) {
    failed += 1;
    console.error(
      `${suite} failed (${result.error?.message ?? `exit ${result.status ?? result.signal}`})`,
    );
  }
}
console.log(`\n${suites.length - failed}/${suites.length} suites passed`);
process.exitCode = failed > 0 ? 1 : 0;
