/**
 * Prometheus metrics with `prom-client`, opt-in: `createCometMetrics()` makes the metrics, the
 * server feeds them when given as its `metrics` option, and `metrics.handle` serves the text
 * format for a scraper (mount it on an internal port or path). Label values are bounded: topics
 * appear by name only when allow-listed (others count under `_other`), statuses and transports
 * are small fixed sets. The operations page of the docs says what each one means.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import type * as PromClient from 'prom-client';
import type { Counter, Histogram, HistogramConfiguration, Registry } from 'prom-client';
import type {
  BrokerOperation,
  LimitName,
  RouteName,
  ServerObserver,
  TransportName,
} from './observer';
import type { AuthorizeAction } from './options';

/** Options of {@link createCometMetrics}. */
export interface CometMetricsOptions {
  /**
   * Where the metrics are registered (pass yours to serve them with your other metrics).
   * @default a new `Registry` of its own
   */
  registry?: Registry;
  /**
   * Prefix of every metric name.
   * @default 'cometkit_'
   */
  prefix?: string;
  /**
   * Topics that get series of their own (`topic` label); every other topic counts under
   * `_other`, so the number of series stays bounded whatever topics clients make up.
   * @default [] (no per-topic series)
   */
  topics?: readonly string[] | ((topic: string) => boolean);
  /**
   * Also collects prom-client's default process metrics (CPU, memory, event-loop lag) into
   * the registry.
   * @default false
   */
  processMetrics?: boolean;
}

/** Counts the server may be asked for at scrape time. */
export interface MetricsSource {
  stats(): { waiting: number; streams: number; sockets: number; inFlight: number };
}

/** Metrics from {@link createCometMetrics}. */
export interface CometMetrics {
  /** The registry holding them. */
  readonly registry: Registry;
  /**
   * Serves the metrics in the Prometheus text format (`GET`, any path): a `node:http` handler
   * or Express/Connect middleware. Keep it off the public internet (an internal port, or an
   * `authorize` in front).
   */
  handle(req: IncomingMessage, res: ServerResponse): void;
  /**
   * Called by `createCometServer` when these metrics are its `metrics` option: the gauges read
   * `source` at scrape time (until `stop`); `observer` receives the server's events.
   */
  observe(source: MetricsSource): { observer: ServerObserver; stop(): void };
}

interface TallyEntry {
  labels: Record<string, string>;
  value: number;
}

/** Plain counts by one or two label values, copied into a prom-client counter at scrape time. */
interface Tally {
  add(first: string, second?: string | number, amount?: number): void;
  /** Sets `counter` to the totals (called from its `collect`). */
  flush(counter: Counter): void;
}

function createTally(labelNames: readonly [string, string?]): Tally {
  const [firstName, secondName] = labelNames;
  // Two levels of Map, so the hot path builds no key string.
  const table = new Map<string, Map<string | number, TallyEntry>>();
  return {
    add(first, second = '', amount = 1) {
      let row = table.get(first);
      if (row === undefined) {
        row = new Map();
        table.set(first, row);
      }
      let entry = row.get(second);
      if (entry === undefined) {
        const labels: Record<string, string> = { [firstName]: first };
        if (secondName !== undefined) labels[secondName] = String(second);
        entry = { labels, value: 0 };
        row.set(second, entry);
      }
      entry.value += amount;
    },
    flush(counter) {
      counter.reset();
      for (const row of table.values()) {
        for (const entry of row.values()) counter.inc(entry.labels, entry.value);
      }
    },
  };
}

/** The upper bounds of the broker latency buckets, in seconds. */
const BROKER_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

type HistogramData = ReturnType<Histogram<'operation'>['get']>;

let promModule: typeof PromClient | undefined;

/**
 * prom-client, loaded by the first {@link createCometMetrics}, not with the server: a server
 * without metrics does not pay for it (8 MB of RSS in a process that loads no other CommonJS
 * package). Loaded with `require`, since making the metrics is synchronous: a bundle of your
 * server must leave `prom-client` to `node_modules` (mark it external) to use metrics.
 */
function promClient(): typeof PromClient {
  promModule ??= createRequire(import.meta.url)('prom-client') as typeof PromClient;
  return promModule;
}

/** The broker latency histogram's class, made on prom-client's `Histogram` once it is loaded. */
type OperationHistogram = Histogram<'operation'> & {
  record(operation: string, seconds: number): void;
};
let operationHistogramClass:
  | (new (
      configuration: HistogramConfiguration<'operation'>,
    ) => OperationHistogram)
  | undefined;

function createOperationHistogram(
  configuration: HistogramConfiguration<'operation'>,
): OperationHistogram {
  operationHistogramClass ??= operationHistogramOn(promClient().Histogram);
  return new operationHistogramClass(configuration);
}

interface TimingRow {
  /** Observations per bucket (not cumulative); the last slot is above every bound. */
  counts: number[];
  sum: number;
  count: number;
}

/**
 * The broker latency histogram. prom-client's `observe` hashes its labels on every call (about
 * 1 µs, once per publish and read); here a call adds to plain arrays, and the registry reads
 * the histogram through `get()` as it reads any other.
 */
function operationHistogramOn(Base: typeof Histogram) {
  return class OperationHistogram extends Base<'operation'> {
    // Made lazily: the base constructor calls `reset()` before this class's fields exist.
    private rows: Map<string, TimingRow> | undefined;

    record(operation: string, seconds: number): void {
      this.rows ??= new Map();
      let row = this.rows.get(operation);
      if (row === undefined) {
        row = { counts: new Array<number>(BROKER_BUCKETS.length + 1).fill(0), sum: 0, count: 0 };
        this.rows.set(operation, row);
      }
      let index = 0;
      while (index < BROKER_BUCKETS.length && seconds > (BROKER_BUCKETS[index] as number))
        index += 1;
      row.counts[index] = (row.counts[index] as number) + 1;
      row.sum += seconds;
      row.count += 1;
    }

    override async get(): HistogramData {
      const name = (this as unknown as { name: string }).name;
      const values: Array<{
        metricName: string;
        labels: Record<string, string | number>;
        value: number;
      }> = [];
      for (const [operation, row] of this.rows ?? []) {
        let cumulative = 0;
        BROKER_BUCKETS.forEach((bound, index) => {
          cumulative += row.counts[index] as number;
          values.push({
            metricName: `${name}_bucket`,
            labels: { le: bound, operation },
            value: cumulative,
          });
        });
        values.push({
          metricName: `${name}_bucket`,
          labels: { le: '+Inf', operation },
          value: row.count,
        });
        values.push({ metricName: `${name}_sum`, labels: { operation }, value: row.sum });
        values.push({ metricName: `${name}_count`, labels: { operation }, value: row.count });
      }
      // The shape prom-client's own histograms answer (its `type` is the string at run time).
      const data = {
        name,
        help: (this as unknown as { help: string }).help,
        type: 'histogram',
        values,
        aggregator: 'sum',
      };
      return data as unknown as Awaited<HistogramData>;
    }

    /** What the registry reads for the text format. */
    getForPromString() {
      return this.get();
    }

    override reset(): void {
      super.reset();
      this.rows = undefined;
    }
  };
}

/** The label of a topic outside the allow-list. */
export const OTHER_TOPIC = '_other';

/**
 * Makes the metrics. One set can serve several servers of one process (gauges add up).
 *
 * @example
 * ```ts
 * const metrics = createCometMetrics({ topics: ['chat'] });
 * const comet = createCometServer({ metrics });
 * http.createServer(metrics.handle).listen(9464, '127.0.0.1'); // scraped by Prometheus
 * ```
 */
export function createCometMetrics(options: CometMetricsOptions = {}): CometMetrics {
  const { Counter, collectDefaultMetrics, Gauge, Registry } = promClient();
  const registry = options.registry ?? new Registry();
  const prefix = options.prefix ?? 'cometkit_';
  if (!/^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(prefix)) {
    throw new TypeError(`createCometMetrics: prefix must be a valid metric name prefix`);
  }
  const allow = options.topics ?? [];
  const allowed =
    typeof allow === 'function'
      ? allow
      : (() => {
          const set = new Set(allow);
          return (topic: string) => set.has(topic);
        })();
  const topicLabel = (topic: string) => {
    try {
      return allowed(topic) ? topic : OTHER_TOPIC;
    } catch {
      return OTHER_TOPIC;
    }
  };
  if (options.processMetrics) collectDefaultMetrics({ register: registry, prefix });
  const registers = [registry];
  const sources = new Set<MetricsSource>();
  const sum = (pick: (stats: ReturnType<MetricsSource['stats']>) => number) => {
    let total = 0;
    for (const source of sources) total += pick(source.stats());
    return total;
  };

  new Gauge({
    name: `${prefix}held_requests`,
    help: 'Requests held open right now, by transport: long-polls waiting for a message, open streams, open WebSockets.',
    labelNames: ['transport'],
    registers,
    collect() {
      this.set(
        { transport: 'longpoll' },
        sum((stats) => stats.waiting),
      );
      this.set(
        { transport: 'stream' },
        sum((stats) => stats.streams),
      );
      this.set(
        { transport: 'websocket' },
        sum((stats) => stats.sockets),
      );
    },
  });
  new Gauge({
    name: `${prefix}in_flight_requests`,
    help: 'HTTP requests being worked on right now (open streams included; a held long-poll waits outside this count).',
    registers,
    collect() {
      this.set(sum((stats) => stats.inFlight));
    },
  });
  /** A counter whose hot path adds to a plain number; prom-client gets the totals at scrape. */
  const counter = (name: string, help: string, labelNames: readonly [string, string?]) => {
    const tally = createTally(labelNames);
    new Counter({
      name: `${prefix}${name}`,
      help,
      labelNames: labelNames.filter((label): label is string => label !== undefined),
      registers,
      collect() {
        tally.flush(this);
      },
    });
    return tally;
  };
  const opened = counter('connections_opened_total', 'Streams and WebSockets opened.', [
    'transport',
  ]);
  const closed = counter(
    'connections_closed_total',
    'Streams and WebSockets closed (by either side).',
    ['transport'],
  );
  const published = counter(
    'messages_published_total',
    'Messages published through this instance (sends, the publish API, your code).',
    ['topic'],
  );
  const delivered = counter(
    'messages_delivered_total',
    'Messages written to clients, by transport (one message to 100 clients counts 100).',
    ['transport', 'topic'],
  );
  const answers = counter('http_answers_total', 'HTTP answers written, by route and status.', [
    'route',
    'status',
  ]);
  const resets = counter(
    'resets_total',
    'Reads whose cursor was outside the topic history (the client gets a reset and may have missed messages).',
    ['topic'],
  );
  const refusals = counter(
    'authorization_refusals_total',
    'Topics refused by the authorize hook, by action and code.',
    ['action', 'code'],
  );
  const brokerErrors = counter(
    'broker_errors_total',
    'Failed broker calls by operation, and losses of the backing store (operation="connection").',
    ['operation'],
  );
  const limits = counter(
    'limits_hit_total',
    'Requests refused by a limit: rate limits (requests, sends, publishes) and the body size (body).',
    ['limit'],
  );
  const brokerSeconds = createOperationHistogram({
    name: `${prefix}broker_duration_seconds`,
    help: 'Time of broker calls, by operation.',
    labelNames: ['operation'],
    buckets: [...BROKER_BUCKETS],
    registers,
  });

  const observer: ServerObserver = {
    answered(route: RouteName, status: number) {
      answers.add(route, status);
    },
    connection(transport, change) {
      (change === 'open' ? opened : closed).add(transport);
    },
    published(topic) {
      published.add(topicLabel(topic));
    },
    delivered(transport: TransportName, topic, count) {
      if (count > 0) delivered.add(transport, topicLabel(topic), count);
    },
    reset(topic) {
      resets.add(topicLabel(topic));
    },
    refused(action: AuthorizeAction, code) {
      refusals.add(action, code);
    },
    brokerCall(operation: BrokerOperation, seconds, failed) {
      brokerSeconds.record(operation, seconds);
      if (failed) brokerErrors.add(operation);
    },
    brokerDown() {
      brokerErrors.add('connection');
    },
    limited(limit: LimitName) {
      limits.add(limit);
    },
  };

  return {
    registry,
    handle(req, res) {
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { allow: 'GET, HEAD', 'content-length': '0' });
        res.end();
        return;
      }
      registry.metrics().then(
        (text) => {
          res.writeHead(200, {
            'content-type': registry.contentType,
            'cache-control': 'no-store',
            'content-length': String(Buffer.byteLength(text)),
          });
          res.end(req.method === 'HEAD' ? undefined : text);
        },
        () => {
          res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' });
          res.end('the metrics could not be collected\n');
        },
      );
    },
    observe(source) {
      sources.add(source);
      return { observer, stop: () => void sources.delete(source) };
    },
  };
}
