/**
 * Prometheus metrics with `prom-client`, opt-in: `createCometMetrics()` makes the metrics, the
 * server feeds them when given as its `metrics` option, and `metrics.handle` serves the text
 * format for a scraper (mount it on an internal port or path). Label values are bounded: topics
 * appear by name only when allow-listed (others count under `_other`), statuses and transports
 * are small fixed sets. The operations page of the docs says what each one means.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
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
    help: 'HTTP requests being handled right now (held ones included).',
    registers,
    collect() {
      this.set(sum((stats) => stats.inFlight));
    },
  });
  const opened = new Counter({
    name: `${prefix}connections_opened_total`,
    help: 'Streams and WebSockets opened.',
    labelNames: ['transport'],
    registers,
  });
  const closed = new Counter({
    name: `${prefix}connections_closed_total`,
    help: 'Streams and WebSockets closed (by either side).',
    labelNames: ['transport'],
    registers,
  });
  const published = new Counter({
    name: `${prefix}messages_published_total`,
    help: 'Messages published through this instance (sends, the publish API, your code).',
    labelNames: ['topic'],
    registers,
  });
  const delivered = new Counter({
    name: `${prefix}messages_delivered_total`,
    help: 'Messages written to clients, by transport (one message to 100 clients counts 100).',
    labelNames: ['transport', 'topic'],
    registers,
  });
  const answers = new Counter({
    name: `${prefix}http_answers_total`,
    help: 'HTTP answers written, by route and status.',
    labelNames: ['route', 'status'],
    registers,
  });
  const resets = new Counter({
    name: `${prefix}resets_total`,
    help: 'Reads whose cursor was outside the topic history (the client gets a reset and may have missed messages).',
    labelNames: ['topic'],
    registers,
  });
  const refusals = new Counter({
    name: `${prefix}authorization_refusals_total`,
    help: 'Topics refused by the authorize hook, by action and code.',
    labelNames: ['action', 'code'],
    registers,
  });
  const brokerSeconds = new Histogram({
    name: `${prefix}broker_duration_seconds`,
    help: 'Time of broker calls, by operation.',
    labelNames: ['operation'],
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers,
  });
  const brokerErrors = new Counter({
    name: `${prefix}broker_errors_total`,
    help: 'Failed broker calls by operation, and losses of the backing store (operation="connection").',
    labelNames: ['operation'],
    registers,
  });
  const limits = new Counter({
    name: `${prefix}limits_hit_total`,
    help: 'Requests refused by a limit: rate limits (requests, sends, publishes) and the body size (body).',
    labelNames: ['limit'],
    registers,
  });

  // Children by label values, made once: the hot path does a Map lookup, not label hashing.
  const children = new Map<string, { inc(value?: number): void }>();
  const child = (counter: Counter, ...values: string[]) => {
    const key = `${(counter as unknown as { name: string }).name}\u0000${values.join('\u0000')}`;
    let found = children.get(key);
    if (found === undefined) {
      found = counter.labels(...values);
      children.set(key, found);
    }
    return found;
  };
  const timers = new Map<string, Histogram.Internal<string>>();
  const timer = (operation: string) => {
    let found = timers.get(operation);
    if (found === undefined) {
      found = brokerSeconds.labels(operation);
      timers.set(operation, found);
    }
    return found;
  };

  const observer: ServerObserver = {
    answered(route: RouteName, status: number) {
      child(answers, route, String(status)).inc();
    },
    connection(transport, change) {
      child(change === 'open' ? opened : closed, transport).inc();
    },
    published(topic) {
      child(published, topicLabel(topic)).inc();
    },
    delivered(transport: TransportName, topic, count) {
      if (count > 0) child(delivered, transport, topicLabel(topic)).inc(count);
    },
    reset(topic) {
      child(resets, topicLabel(topic)).inc();
    },
    refused(action: AuthorizeAction, code) {
      child(refusals, action, code).inc();
    },
    brokerCall(operation: BrokerOperation, seconds, failed) {
      timer(operation).observe(seconds);
      if (failed) child(brokerErrors, operation).inc();
    },
    brokerDown() {
      child(brokerErrors, 'connection').inc();
    },
    limited(limit: LimitName) {
      child(limits, limit).inc();
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
