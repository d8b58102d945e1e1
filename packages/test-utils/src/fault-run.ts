/**
 * The fault run: several server instances on one Redis behind the round-robin test front (no
 * stickiness, faults on), real `@cometkit/core` clients (long-poll and stream) that send while
 * the instances publish, one instance killed and started again, Redis restarted once. It
 * counts what an operator cares about: lost, duplicated, reordered, sends unresolved or
 * published twice, resets, send times. The bench (`bench/suites/fault-run.mjs`, instances in
 * child processes killed with SIGKILL) prints the figures; a short run is a CI test.
 */
// Types only: test-utils depends on no cometkit package; the caller passes the client factory.
import type { CometClient, CometClientOptions, TransportName } from '@cometkit/core';
import { createFront, type Front, type FrontFault } from './front';

/** One running server instance, however it was started. */
export interface FaultRunInstance {
  /** `http://127.0.0.1:<port>`, serving the cometkit handler at `/api/comet`. */
  url: string;
  port: number;
  /** Publishes through this instance (its `server.publish`); rejects when it is down. */
  publish(topic: string, data: unknown): Promise<string>;
  /** Kills it abruptly (SIGKILL for a child process): no drain, nothing finishes. */
  kill(): Promise<void>;
}

/** Options of {@link runFaultRun}. */
export interface FaultRunOptions {
  /** Makes a client: `createCometClient` of `@cometkit/core`. */
  createClient(options: CometClientOptions): CometClient;
  /** Starts instance `slot`, on `port` when given (a restart where the front expects it). */
  startInstance(slot: number, port?: number): Promise<FaultRunInstance>;
  /** Restarts Redis (without persistence: its history is lost). */
  restartRedis(): Promise<void>;
  /** @default 3 */
  instances?: number;
  /** Messages in all: half published by instances, half sent by clients. @default 20_000 */
  messages?: number;
  /** @default 5 */
  topics?: number;
  /** Clients per transport, each subscribed to every topic. @default { longpoll: 3, stream: 3 } */
  clients?: Partial<Record<TransportName, number>>;
  /** The front's fault probability per request. @default 0.02 */
  faultRate?: number;
  /** The instance killed (and started again after `downMs`) at 25% of the load. @default 1 */
  victim?: number;
  /** @default 1000 */
  downMs?: number;
  /** The hard bound of the whole run, in ms. @default 240_000 */
  timeLimitMs?: number;
  /**
   * The pause after each group of 10 publishes and each client's batch of 3 sends, in ms: a
   * short run is paced so that the kill and the restart land while messages are in flight.
   * @default 2
   */
  paceMs?: number;
  /** Seed of the front's faults. @default 1 */
  seed?: number;
  /** Progress lines, e.g. `console.log`. @default silent */
  log?: (line: string) => void;
}

/** What a fault run measured. */
export interface FaultRunReport {
  /** Publishes by instances and sends by clients that were answered with an id. */
  acknowledged: { publishes: number; sends: number };
  /** Publishes that failed (instance killed, Redis down): unknown outcome, not expected. */
  publishesFailed: number;
  clients: number;
  /** Acknowledged messages a client never got, outside what a reset reported as lost. */
  lost: number;
  /**
   * Acknowledged messages a reset reported as lost: after the client's cursor in an epoch whose
   * history Redis lost. (A message skipped by a reset though Redis still held it is `lost`.)
   */
  lostInResets: number;
  /** The same message id delivered twice to one client. */
  duplicated: number;
  /** Messages delivered out of id order within an epoch, or from an older epoch after a newer. */
  reordered: number;
  /** Sends that never resolved or rejected by the end (after a bounded wait). */
  sendsUnresolved: number;
  /** Sends that rejected (gave up). */
  sendsRejected: number;
  /** Times a client retried a send (a fault, a killed instance, Redis down): same id each time. */
  sendRetries: number;
  /** Sends published more than once within one epoch (must be 0). */
  sendsPublishedTwice: number;
  /**
   * Sends published again in the new epoch after a Redis restart without persistence lost the
   * first copy and its idempotency record (what `docs/guide/scaling.md` says can happen).
   */
  sendsRepublishedAcrossRestart: number;
  /** Resets the clients got, and the ones that left nothing behind (the new epoch's start). */
  resets: number;
  /** Time from `send()` to its answer, in ms. */
  sendMs: { p50: number; p99: number; max: number };
  faults: Partial<Record<FrontFault, number>>;
  /** Whether every client caught up before the time limit. */
  caughtUp: boolean;
  durationMs: number;
}

interface Received {
  id: string;
  key: string;
}

interface ClientRecord {
  client: CometClient;
  byTopic: Map<string, Received[]>;
  resets: Array<{ topic: string; cursor: string | undefined; position: string | undefined }>;
}

/** `<epoch>:<ms>-<seq>` split into its epoch and a comparable pair. */
function parseId(id: string): { epoch: string; ms: bigint; seq: bigint } {
  const [epoch = '', stream = ''] = id.split(':');
  const [ms = '0', seq = '0'] = stream.split('-');
  return { epoch, ms: BigInt(ms), seq: BigInt(seq) };
}

/** Orders two ids of one epoch; `undefined` when their epochs differ. */
function compareIds(a: string, b: string): number | undefined {
  const x = parseId(a);
  const y = parseId(b);
  if (x.epoch !== y.epoch) return undefined;
  if (x.ms !== y.ms) return x.ms < y.ms ? -1 : 1;
  return x.seq === y.seq ? 0 : x.seq < y.seq ? -1 : 1;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] as number;
}

/** A small seeded PRNG (mulberry32), so a run's faults can be repeated. */
function seeded(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Waits for `promise`, at most `ms`; the timer goes with it. */
async function within(promise: Promise<unknown>, ms: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([
    promise,
    new Promise((resolve) => {
      timer = setTimeout(resolve, Math.max(0, ms));
    }),
  ]);
  clearTimeout(timer);
}

/** Runs the fault run and answers its figures; every phase is bounded by `timeLimitMs`. */
export async function runFaultRun(options: FaultRunOptions): Promise<FaultRunReport> {
  const started = Date.now();
  const log = options.log ?? (() => {});
  const total = options.messages ?? 20_000;
  const topicCount = options.topics ?? 5;
  const topics = Array.from({ length: topicCount }, (_, index) => `fault-${index}`);
  const clientCounts = options.clients ?? { longpoll: 3, stream: 3 };
  const deadline = started + (options.timeLimitMs ?? 240_000);
  const remaining = () => deadline - Date.now();
  const victim = options.victim ?? 1;
  const pace = options.paceMs ?? 2;

  const instances: Array<FaultRunInstance | undefined> = [];
  for (let slot = 0; slot < (options.instances ?? 3); slot += 1) {
    instances.push(await options.startInstance(slot));
  }
  const front: Front = await createFront({
    targets: instances.map((instance) => instance?.url as string),
    faults: { rate: options.faultRate ?? 0.02, random: seeded(options.seed ?? 1) },
  });

  const records: ClientRecord[] = [];
  const expected = new Map<string, { topic: string; id: string; send: boolean }>();
  const sendTimes: number[] = [];
  const pendingSends = new Set<Promise<unknown>>();
  let sendsRejected = 0;
  let sendRetries = 0;
  let publishesFailed = 0;
  let acknowledgedPublishes = 0;
  let acknowledgedSends = 0;
  try {
    for (const [transport, count] of Object.entries(clientCounts)) {
      for (let index = 0; index < (count ?? 0); index += 1) {
        const client = options.createClient({
          url: `${front.url}/api/comet`,
          transports: [transport as TransportName],
          wait: 5000,
          backoff: { initialDelay: 50, maxDelay: 1000 },
        });
        const record: ClientRecord = { client, byTopic: new Map(), resets: [] };
        for (const topic of topics) record.byTopic.set(topic, []);
        client.on('message', (message) => {
          const key = (message.data as { k?: string } | null)?.k;
          if (message.id === undefined || key === undefined) return;
          record.byTopic.get(message.topic)?.push({ id: message.id, key });
        });
        client.on('reset', (event) => record.resets.push(event));
        client.on('diagnostic', (diagnostic) => {
          if (diagnostic.code === 'send-retry') sendRetries += 1;
        });
        for (const topic of topics) client.subscribe(topic, () => {});
        records.push(record);
      }
    }
    // Every client is connected before the load starts.
    while (records.some((r) => r.client.getState().status !== 'connected') && remaining() > 0) {
      await sleep(20);
    }

    // The load: one counter hands out message numbers; half the messages are instance
    // publishes, half client sends.
    const half = Math.floor(total / 2);
    let next = 0;
    let sendsStarted = 0;
    // Publishes in flight, over both publisher loops: no more are started than are missing.
    let publishing = 0;
    const progress = () => (acknowledgedPublishes + acknowledgedSends) / total;
    const live = () => liveInstances(instances);
    let turn = 0;

    const publisher = async () => {
      while (acknowledgedPublishes < half && remaining() > 0) {
        // Publishes keep pace with sends (sends are slower: one in flight per client), so the
        // kill and the restart find both kinds in flight.
        if (acknowledgedPublishes > acknowledgedSends + 200 && sendsStarted < half) {
          await sleep(10);
          continue;
        }
        const group: Array<Promise<void>> = [];
        for (let k = 0; k < 10 && acknowledgedPublishes + publishing < half; k += 1) {
          const up = live();
          const instance = up[turn++ % up.length];
          if (!instance) break;
          const n = next++;
          const topic = topics[n % topicCount] as string;
          const key = `p${n}`;
          publishing += 1;
          group.push(
            instance
              .publish(topic, { k: key })
              .then(
                (id) => {
                  acknowledgedPublishes += 1;
                  expected.set(key, { topic, id, send: false });
                },
                () => {
                  publishesFailed += 1;
                },
              )
              .finally(() => {
                publishing -= 1;
              }),
          );
        }
        const failedBefore = publishesFailed;
        await Promise.all(group);
        // Let the clients and the other loops run; during an outage (failures come at once)
        // try again a little later rather than spin.
        await sleep(
          group.length === 0 || publishesFailed - failedBefore === group.length ? 50 : pace,
        );
      }
    };
    const sender = async (record: ClientRecord) => {
      while (sendsStarted < half && remaining() > 0) {
        const batch: Array<Promise<unknown>> = [];
        for (let k = 0; k < 3 && sendsStarted < half; k += 1) {
          sendsStarted += 1;
          const n = next++;
          const topic = topics[n % topicCount] as string;
          const key = `s${n}`;
          const at = performance.now();
          const sent = record.client.send(topic, { k: key }).then(
            (id) => {
              sendTimes.push(performance.now() - at);
              acknowledgedSends += 1;
              // The reference server always answers with the broker's id.
              expected.set(key, { topic, id: id as string, send: true });
            },
            () => {
              sendsRejected += 1;
            },
          );
          pendingSends.add(sent);
          void sent.finally(() => pendingSends.delete(sent));
          batch.push(sent);
        }
        // Bounded: a send that never settles does not hold the loop past the deadline.
        await within(Promise.all(batch), remaining());
        if (pace > 2) await sleep(pace);
      }
    };
    const chaos = async () => {
      while (progress() < 0.25 && remaining() > 0) await sleep(20);
      log(`kill instance ${victim} (${Math.round(progress() * 100)}%)`);
      const dead = instances[victim];
      instances[victim] = undefined;
      await dead?.kill();
      await sleep(options.downMs ?? 1000);
      if (dead) instances[victim] = await options.startInstance(victim, dead.port);
      log('instance back');
      while (progress() < 0.6 && remaining() > 0) await sleep(20);
      const got = records.map((r) => [...r.byTopic.values()].reduce((n, l) => n + l.length, 0));
      log(
        `restart Redis (${Math.round(progress() * 100)}%): ${acknowledgedPublishes} + ${acknowledgedSends} acknowledged, clients have ${got.join(' ')}`,
      );
      await options.restartRedis();
      log('Redis back');
    };
    await Promise.all([publisher(), publisher(), chaos(), ...records.map(sender)]);
    log(`load done in ${Date.now() - started} ms; waiting for sends and deliveries`);

    // Every send settles, within the bound.
    while (pendingSends.size > 0 && remaining() > 0) await sleep(50);

    // Barrier: one last publish per topic; once every client has it, anything late is in.
    const barrier = new Map<string, string>();
    for (const topic of topics) {
      while (!barrier.has(topic) && remaining() > 0) {
        const instance = live()[0];
        const id = await instance?.publish(topic, { k: `b-${topic}` }).catch(() => undefined);
        if (id !== undefined) barrier.set(topic, id);
        else await sleep(50);
      }
    }
    const hasBarrier = (record: ClientRecord) =>
      topics.every((topic) => record.byTopic.get(topic)?.some((m) => m.key === `b-${topic}`));
    while (!records.every(hasBarrier) && remaining() > 0) await sleep(50);
    const caughtUp = records.every(hasBarrier);

    return {
      ...count(records, expected),
      acknowledged: { publishes: acknowledgedPublishes, sends: acknowledgedSends },
      publishesFailed,
      clients: records.length,
      sendsUnresolved: pendingSends.size,
      sendsRejected,
      sendRetries,
      sendMs: (() => {
        const sorted = [...sendTimes].sort((a, b) => a - b);
        const round = (ms: number) => Math.round(ms);
        return {
          p50: round(percentile(sorted, 50)),
          p99: round(percentile(sorted, 99)),
          max: round(sorted.at(-1) ?? 0),
        };
      })(),
      faults: Object.fromEntries(front.faults()),
      caughtUp,
      durationMs: Date.now() - started,
    };
  } finally {
    for (const record of records) record.client.close();
    await front.close();
    await Promise.all(liveInstances(instances).map((instance) => instance.kill()));
  }
}

function liveInstances(list: Array<FaultRunInstance | undefined>): FaultRunInstance[] {
  return list.filter((instance): instance is FaultRunInstance => instance !== undefined);
}

/** The delivery figures: what each client got against what was acknowledged. */
function count(
  records: ClientRecord[],
  expected: Map<string, { topic: string; id: string; send: boolean }>,
) {
  let lost = 0;
  let lostInResets = 0;
  let duplicated = 0;
  let reordered = 0;
  let resets = 0;
  // Every id each send key was seen with, by any client or in its answer.
  const idsOfSend = new Map<string, Set<string>>();
  for (const [key, entry] of expected) {
    if (entry.send) idsOfSend.set(key, new Set([entry.id]));
  }
  for (const record of records) {
    resets += record.resets.length;
    for (const [topic, list] of record.byTopic) {
      const ids = new Set<string>();
      const epochsSeen: string[] = [];
      let previous: string | undefined;
      for (const message of list) {
        if (ids.has(message.id)) duplicated += 1;
        ids.add(message.id);
        if (message.key.startsWith('s')) idsOfSend.get(message.key)?.add(message.id);
        const epoch = parseId(message.id).epoch;
        if (previous !== undefined) {
          const order = compareIds(previous, message.id);
          if (order !== undefined && order > 0) reordered += 1;
          // Back to an epoch already left: out of order across epochs.
          if (order === undefined && epochsSeen.includes(epoch)) reordered += 1;
        }
        if (epochsSeen.at(-1) !== epoch) epochsSeen.push(epoch);
        previous = message.id;
      }
      const topicResets = record.resets.filter((reset) => reset.topic === topic);
      for (const entry of expected.values()) {
        if (entry.topic !== topic || ids.has(entry.id)) continue;
        if (topicResets.some((reset) => reportedLost(entry.id, reset.cursor, reset.position))) {
          lostInResets += 1;
        } else lost += 1;
      }
    }
  }
  let sendsPublishedTwice = 0;
  let sendsRepublishedAcrossRestart = 0;
  for (const ids of idsOfSend.values()) {
    if (ids.size < 2) continue;
    const epochs = new Set([...ids].map((id) => parseId(id).epoch));
    if (epochs.size < ids.size) sendsPublishedTwice += 1;
    else sendsRepublishedAcrossRestart += 1;
  }
  return {
    lost,
    lostInResets,
    duplicated,
    reordered,
    resets,
    sendsPublishedTwice,
    sendsRepublishedAcrossRestart,
  };
}

/**
 * Whether a reset from `cursor` to `position` reported message `id` as lost because Redis no
 * longer has it: it is after the cursor in the cursor's epoch, and delivery resumed in another
 * epoch. A message of the epoch delivery resumed in was still there: skipping it is a loss.
 */
function reportedLost(id: string, cursor: string | undefined, position: string | undefined) {
  if (cursor === undefined || position === undefined) return false;
  const epoch = parseId(id).epoch;
  if (epoch !== parseId(cursor).epoch || epoch === parseId(position).epoch) return false;
  return (compareIds(cursor, id) ?? 1) < 0;
}

/** The report as the lines `pnpm bench` prints. */
export function formatFaultRunReport(report: FaultRunReport): string {
  const faults = Object.entries(report.faults)
    .map(([kind, n]) => `${kind} ${n}`)
    .join(', ');
  return [
    `acknowledged          ${report.acknowledged.publishes} publishes + ${report.acknowledged.sends} sends (${report.clients} clients)`,
    `publishes failed      ${report.publishesFailed} (instance killed or Redis down: not acknowledged)`,
    `lost                  ${report.lost} (target 0; ${report.lostInResets} more reported by resets)`,
    `duplicated            ${report.duplicated} (target 0)`,
    `reordered             ${report.reordered} (target 0)`,
    `sends unresolved      ${report.sendsUnresolved} (target 0; ${report.sendsRejected} rejected; ${report.sendRetries} retries)`,
    `sends published twice ${report.sendsPublishedTwice} (target 0; ${report.sendsRepublishedAcrossRestart} again after Redis lost the first copy)`,
    `resets                ${report.resets}`,
    `send time             p50 ${report.sendMs.p50} ms, p99 ${report.sendMs.p99} ms, max ${report.sendMs.max} ms (target p99 < 10 000)`,
    `front faults          ${faults || 'none'}`,
    `caught up             ${report.caughtUp ? 'yes' : 'NO (time limit)'} in ${report.durationMs} ms`,
  ].join('\n');
}
