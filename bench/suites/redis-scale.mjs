/**
 * @cometkit/redis under load (issue 17): how fast one instance publishes through the Redis broker
 * (a burst of 20 000 messages, not awaited one by one, as `comet.publish` in a loop), and the
 * fan-out of one message to held long-polls spread over 3 server instances on one Redis: each
 * instance is woken through the broker's Pub/Sub channel and reads the message from the stream.
 * Speed is printed, never asserted.
 *
 * Run alone:  pnpm --filter @cometkit/server --filter @cometkit/redis build &&
 *             node --expose-gc bench/suites/redis-scale.mjs
 * Sizes:      BENCH_REDIS_FANOUT=3000 (held polls over the 3 instances), BENCH_REDIS_ROUNDS=5,
 *             BENCH_REDIS_BURST=20000, BENCH_REDIS_TRIALS=3
 * Redis:      BENCH_REDIS_URL, or a throwaway `redis-server` (free port, no persistence)
 *
 * The instances are long-poll.mjs's server children (built @cometkit/server, default options,
 * the Redis broker with one shared key prefix); the clients are its raw keep-alive sockets, in
 * this process. Publish times are taken in the publishing instance on a clock all share.
 */
import { fileURLToPath } from 'node:url';
import {
  CONNECT_CHUNK,
  connected,
  cursorOf,
  percentile,
  poll,
  startRedisServer,
  untilHeld,
  within,
  withServer,
} from './long-poll.mjs';

export const name = 'redis-scale';

const FANOUT = Number(process.env.BENCH_REDIS_FANOUT ?? 3000);
const ROUNDS = Number(process.env.BENCH_REDIS_ROUNDS ?? 5);
const WARM = 2;
const BURST = Number(process.env.BENCH_REDIS_BURST ?? 20_000);
const TRIALS = Number(process.env.BENCH_REDIS_TRIALS ?? 3);
const INSTANCES = 3;

const fmt = (value, digits = 1) =>
  value.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: 0 });

/** Runs `fn` with `count` server instances (each `{port, ask}`), started one after another. */
function withServers(count, fn, started = []) {
  if (started.length === count) return fn(started);
  return withServer((server) => withServers(count, fn, [...started, server]));
}

async function publishRate(ask) {
  const rates = [];
  for (let trial = 0; trial < TRIALS; trial += 1) {
    const { publishMs } = await ask(
      { type: 'burst', topic: `burst-${trial}`, count: BURST },
      120_000,
    );
    rates.push(BURST / (publishMs / 1000));
  }
  return rates;
}

async function fanoutAcross(servers) {
  const perInstance = Math.ceil(FANOUT / servers.length);
  const groups = [];
  for (const { port } of servers) {
    const list = [];
    for (let from = 0; from < perInstance; from += CONNECT_CHUNK) {
      list.push(...(await connected(Math.min(CONNECT_CHUNK, perInstance - from), port)));
    }
    groups.push(list);
  }
  const all = groups.flat();
  const limit = Math.max(20_000, all.length * 4);
  const samples = [];
  try {
    const first = await within(limit, 'the handshakes', () =>
      Promise.all(all.map((client) => client.post(poll('fan')))),
    );
    let cursor = cursorOf(first[0].body, 'fan');
    for (let round = 1 - WARM; round <= ROUNDS; round += 1) {
      const answers = all.map((client) => client.post(poll('fan', { fan: cursor }, 20_000)));
      for (const { ask } of servers)
        await untilHeld(ask, perInstance, 'the polls to be held', limit);
      const { t, messageId: id } = await servers[0].ask({
        type: 'paced',
        topic: 'fan',
        count: 1,
        every: 0,
      });
      const got = await within(limit, 'the fan-out', () => Promise.all(answers));
      for (const answer of got) {
        if (answer.status !== 200 || !answer.body.includes(id)) {
          throw new Error(`a fan-out answer lacks message ${id} (status ${answer.status})`);
        }
        if (round >= 1) samples.push(answer.at - t);
      }
      cursor = id;
    }
  } finally {
    for (const client of all) client.close();
  }
  samples.sort((a, b) => a - b);
  return {
    held: all.length,
    p50: percentile(samples, 50),
    p99: percentile(samples, 99),
    max: samples.at(-1),
  };
}

export async function run({ print = true } = {}) {
  const own = process.env.BENCH_REDIS_URL ? undefined : await startRedisServer();
  const env = {
    BENCH_BROKER: process.env.BENCH_BROKER,
    BENCH_REDIS_URL: process.env.BENCH_REDIS_URL,
    BENCH_REDIS_PREFIX: process.env.BENCH_REDIS_PREFIX,
  };
  process.env.BENCH_BROKER = 'redis';
  process.env.BENCH_REDIS_URL ??= own.url;
  process.env.BENCH_REDIS_PREFIX = `bench:shared:${Date.now()}:`;
  try {
    const rates = await withServer(({ ask }) => publishRate(ask));
    const fan = await withServers(INSTANCES, fanoutAcross);
    if (print) {
      rates.sort((a, b) => a - b);
      console.log('\n@cometkit/redis under load (one redis-server, loopback)');
      console.log(
        `publish, one instance, bursts of ${BURST}: ${fmt(rates[Math.floor(rates.length / 2)], 0)} msgs/s median (runs: ${rates.map((r) => fmt(r, 0)).join(', ')})`,
      );
      console.log(
        `fan-out of one message to ${fan.held} held polls over ${INSTANCES} instances (${ROUNDS} rounds pooled): p50 ${fmt(fan.p50)} ms, p99 ${fmt(fan.p99)} ms, max ${fmt(fan.max)} ms`,
      );
    }
    return { rates, fan };
  } finally {
    for (const [key, value] of Object.entries(env)) {
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    }
    await own?.close();
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const overall = setTimeout(() => {
    console.error('redis-scale bench: over 240 s, stopping');
    process.exit(1);
  }, 240_000);
  overall.unref();
  try {
    await run();
    process.exit(0);
  } catch (error) {
    console.error(error);
    process.exit(1);
  }
}
