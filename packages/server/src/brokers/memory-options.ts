/**
 * The memory broker's options: their documented defaults and the one place that checks them and
 * resolves them, plus the public shape of the broker and its usage numbers.
 */
import type { Broker } from '../broker';

/** Options of {@link createMemoryBroker}. */
export interface MemoryBrokerOptions {
  /**
   * The most messages a topic keeps (a count cap next to `historyMaxBytes`). A cursor older than
   * the kept history gets a `reset`.
   * @default 100_000
   */
  historySize?: number;
  /**
   * The most bytes of message JSON a topic keeps (UTF-8 length of each message's `data` as JSON);
   * the oldest messages go first. The default holds a burst of 20 000 messages of 200 bytes.
   * @default 4_194_304 (4 MiB)
   */
  historyMaxBytes?: number;
  /**
   * How long a message stays in history, in ms. Older ones are trimmed when their topic is
   * touched and by a sweep every `sweepInterval`; a topic left with nothing is removed.
   * @default 300_000 (5 minutes)
   */
  historyMaxAge?: number;
  /**
   * The most bytes of message JSON the whole broker keeps; past it, the topic published to least
   * recently loses its oldest messages first (a topic emptied so is removed).
   * @default 67_108_864 (64 MiB)
   */
  maxBytes?: number;
  /**
   * The most topics with history; a publish to a new topic past it removes the topic published
   * to least recently.
   * @default 100_000
   */
  maxTopics?: number;
  /**
   * How often the history of every topic is trimmed by age, in ms (an unref'd timer: it never
   * keeps the process alive).
   * @default 30_000
   */
  sweepInterval?: number;
  /**
   * The epoch written in every id. It must change with every process start so that a cursor
   * from an older start (or another process) gives a `reset`, never a silent gap.
   * @default a random string made when the broker is created
   */
  epoch?: string;
  /**
   * How many send answers the idempotency store keeps at most; the oldest go first.
   * @default 100_000
   */
  maxIdempotencyKeys?: number;
  /**
   * The clock, in ms since the epoch (injected for tests).
   * @default Date.now
   */
  now?: () => number;
}

/** How much a memory broker holds, for tests and monitoring. */
export interface MemoryBrokerUsage {
  /** Topics with a history (empty ones are removed by the sweep). */
  topics: number;
  /** Messages kept, all topics. */
  messages: number;
  /** Bytes of message JSON kept, all topics. */
  bytes: number;
}

/** A memory broker with a few numbers for tests and monitoring. */
export interface MemoryBroker extends Broker {
  /** The epoch of this broker's ids. */
  readonly epoch: string;
  /**
   * How many listeners are registered (one per held request): 0 when nothing is held. The
   * servers' control listeners (reserved `_` topics) are not counted.
   */
  listenerCount(): number;
  /** What the history holds now. */
  usage(): MemoryBrokerUsage;
}

/** {@link MemoryBrokerOptions} checked and with every default filled in. */
export interface ResolvedMemoryBrokerOptions {
  historySize: number;
  historyMaxBytes: number;
  historyMaxAge: number;
  maxBytes: number;
  maxTopics: number;
  sweepInterval: number;
  maxIdempotencyKeys: number;
  now: () => number;
  epoch: string;
}

function randomEpoch(): string {
  return `${Date.now().toString(36)}${Math.floor(Math.random() * 36 ** 4)
    .toString(36)
    .padStart(4, '0')}`;
}

function positiveInteger(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < 1) {
    throw new TypeError(`createMemoryBroker: ${name} must be a positive integer, got ${value}`);
  }
  return value;
}

/** Checks `options` once and fills in the defaults; throws a TypeError for a bad value. */
export function resolveMemoryBrokerOptions(
  options: MemoryBrokerOptions,
): ResolvedMemoryBrokerOptions {
  const resolved: ResolvedMemoryBrokerOptions = {
    historySize: positiveInteger('historySize', options.historySize, 100_000),
    historyMaxBytes: positiveInteger('historyMaxBytes', options.historyMaxBytes, 4_194_304),
    historyMaxAge: positiveInteger('historyMaxAge', options.historyMaxAge, 300_000),
    maxBytes: positiveInteger('maxBytes', options.maxBytes, 67_108_864),
    maxTopics: positiveInteger('maxTopics', options.maxTopics, 100_000),
    sweepInterval: positiveInteger('sweepInterval', options.sweepInterval, 30_000),
    maxIdempotencyKeys: positiveInteger('maxIdempotencyKeys', options.maxIdempotencyKeys, 100_000),
    now: options.now ?? Date.now,
    epoch: options.epoch ?? randomEpoch(),
  };
  if (resolved.epoch.length === 0 || resolved.epoch.includes('-')) {
    throw new TypeError(
      `createMemoryBroker: epoch must be non-empty without "-", got "${resolved.epoch}"`,
    );
  }
  return resolved;
}
