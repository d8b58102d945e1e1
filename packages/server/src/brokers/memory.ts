/**
 * The in-memory broker: per-topic history in ring buffers bounded by count, bytes and age (swept
 * on a timer, empty topics removed, a broker-wide cap on bytes and topics), wake-ups in process
 * (through the shared listener registry), idempotency records written with the publish, and
 * presence entries whose joins and leaves are appended in the same synchronous step, for one
 * process. This file holds the topics' histories, reads and cursors; one topic's ring buffer is
 * in `memory-log.ts`, the options in `memory-options.ts`, presence in `memory-presence.ts`,
 * idempotency records in `memory-idempotency.ts`.
 */
import type { BrokerPublishOptions, BrokerReadResult, BrokerWireRead } from '../broker';
import { createListenerRegistry } from './listeners';
import { createMemoryIdempotency } from './memory-idempotency';
import {
  encode,
  firstSeq,
  grow,
  headOf,
  messagesOf,
  newLog,
  REMOVED_SLOTS,
  slot,
  slotOf,
  type TopicLog,
  wireOf,
  writeWire,
} from './memory-log';
import {
  type MemoryBroker,
  type MemoryBrokerOptions,
  resolveMemoryBrokerOptions,
} from './memory-options';
import { createMemoryPresence } from './memory-presence';

export type { MemoryBroker, MemoryBrokerOptions, MemoryBrokerUsage } from './memory-options';

/**
 * The in-memory broker: per-topic history in a ring buffer bounded by count, bytes and age, a
 * broker-wide cap on bytes and topics, ids `<epoch>-<seq>`, wake-ups in process, and an
 * idempotency store with TTL. Right for one process, or several server instances in one process
 * sharing this object; use `@cometkit/redis` across processes.
 */
export function createMemoryBroker(options: MemoryBrokerOptions = {}): MemoryBroker {
  const {
    historySize,
    historyMaxBytes,
    historyMaxAge,
    maxBytes,
    maxTopics,
    sweepInterval,
    maxIdempotencyKeys,
    now,
    epoch,
  } = resolveMemoryBrokerOptions(options);
  const prefix = `${epoch}-`;
  // In order of the last publish: the first entry is the topic published to least recently.
  const logs = new Map<string, TopicLog>();
  const listeners = createListenerRegistry();
  const idempotency = createMemoryIdempotency(maxIdempotencyKeys, now);
  let closed = false;
  // The highest seq handed out on any topic: a new log starts above it.
  let highestSeq = 0;
  let totalBytes = 0;
  let totalMessages = 0;
  let newestLog: TopicLog | undefined;
  // For each slot, the highest `lastSeq` of a removed log whose topic hashes there. A cursor at
  // or above it cannot have missed a removed log's messages (see `read`).
  let removedUpTo: Float64Array | undefined;

  const sweepTimer = setInterval(sweep, sweepInterval);
  sweepTimer.unref?.();

  const idOf = (seq: number) => `${prefix}${seq}`;

  function dropOldest(log: TopicLog): void {
    // Only the page can hold on to memory (it goes once none of its messages is kept); the
    // numbers are overwritten when the slot is reused.
    log.pages[log.start] = undefined;
    const size = log.sizes[log.start] as number;
    log.bytes -= size;
    totalBytes -= size;
    totalMessages -= 1;
    log.start = log.start + 1 === log.capacity ? 0 : log.start + 1;
    log.count -= 1;
  }

  /** Forgets `topic`'s log, remembering how far it went so that no cursor misses its messages. */
  function remove(topic: string, log: TopicLog): void {
    while (log.count > 0) dropOldest(log);
    logs.delete(topic);
    if (newestLog === log) newestLog = undefined;
    if (log.lastSeq === log.base) return; // never published to: nothing to miss
    removedUpTo ??= new Float64Array(REMOVED_SLOTS);
    const at = slotOf(topic);
    if ((removedUpTo[at] as number) < log.lastSeq) removedUpTo[at] = log.lastSeq;
  }

  /** True when no removed log of `topic` had a message after `seq`. */
  function nothingRemovedAfter(topic: string, seq: number): boolean {
    return removedUpTo === undefined || (removedUpTo[slotOf(topic)] as number) <= seq;
  }

  function trimByAge(log: TopicLog, time: number): void {
    const oldest = time - historyMaxAge;
    while (log.count > 0 && (log.times[log.start] as number) < oldest) dropOldest(log);
  }

  /** Trims every topic by age and removes the ones left empty. */
  function sweep(): void {
    const time = now();
    for (const [topic, log] of logs) {
      trimByAge(log, time);
      if (log.count === 0) remove(topic, log);
    }
  }

  /** Over the broker-wide byte cap: the least recently published topics give up their oldest. */
  function enforceMaxBytes(keep: TopicLog): void {
    for (const [topic, log] of logs) {
      if (totalBytes <= maxBytes) return;
      // The topic just published to keeps its newest message whatever happens.
      while (totalBytes > maxBytes && log.count > (log === keep ? 1 : 0)) dropOldest(log);
      if (log.count === 0) remove(topic, log);
    }
  }

  /** The seq a cursor names, or undefined when it is not from this broker's epoch. */
  function seqOf(cursor: string): number | undefined {
    if (!cursor.startsWith(prefix)) return undefined;
    const text = cursor.slice(prefix.length);
    if (!/^\d{1,15}$/.test(text)) return undefined;
    return Number(text);
  }

  /**
   * Appends to `topic`'s history within the bounds, wakes its listeners and answers the new id.
   * Throws a TypeError for data that JSON cannot carry, before anything changes.
   */
  function append(topic: string, data: unknown, encoded?: string): string {
    const json = encoded ?? encode(data);
    const size = Buffer.byteLength(json);
    let log = logs.get(topic);
    if (!log) {
      if (logs.size >= maxTopics) {
        const [oldTopic, oldLog] = logs.entries().next().value as [string, TopicLog];
        remove(oldTopic, oldLog);
      }
      log = newLog(highestSeq, historySize, headOf(topic, prefix));
      logs.set(topic, log);
    } else if (log !== newestLog) {
      // Moved to the end of the Map's order: the most recently published topic.
      logs.delete(topic);
      logs.set(topic, log);
    }
    newestLog = log;
    const time = now();
    trimByAge(log, time);
    while (log.count > 0 && log.bytes + size > historyMaxBytes) dropOldest(log);
    if (log.count === log.capacity) {
      if (log.capacity < historySize) grow(log, historySize);
      else dropOldest(log);
    }
    log.lastSeq += 1;
    if (log.lastSeq > highestSeq) highestSeq = log.lastSeq;
    const digits = String(log.lastSeq);
    const id = prefix + digits;
    const at = slot(log, log.count);
    log.times[at] = time;
    log.sizes[at] = size;
    writeWire(log, at, digits, json, size);
    log.count += 1;
    log.bytes += size;
    totalBytes += size;
    totalMessages += 1;
    if (totalBytes > maxBytes) enforceMaxBytes(log);
    listeners.notify(topic);
    return id;
  }

  async function read(
    topic: string,
    cursor: string | undefined,
    limit: number,
  ): Promise<BrokerReadResult> {
    if (cursor === undefined) {
      assertOpen();
      return { messages: [], position: positionOf(topic), reset: false, more: false };
    }
    return readNow(topic, cursor, limit);
  }

  /**
   * Where a read of `topic` after `cursor` starts (its log and the index of the first message
   * after the cursor), or, when it reads nothing, its position and whether it is a reset.
   */
  function locate(
    topic: string,
    cursor: string,
  ):
    | { log: TopicLog; from: number; position: string }
    | { log: undefined; position: string; reset: boolean } {
    assertOpen();
    const log = logs.get(topic);
    if (!log) {
      // No history (never published to, or removed): the position is the highest seq, which
      // a later log of this topic starts from.
      const position = idOf(highestSeq);
      const seq = seqOf(cursor);
      const missed = seq === undefined || seq > highestSeq || !nothingRemovedAfter(topic, seq);
      // A cursor still good stays as it is: a topic nobody publishes to keeps its position.
      return missed
        ? { log: undefined, position, reset: true }
        : { log: undefined, position: cursor, reset: false };
    }
    trimByAge(log, now());
    const position = idOf(log.lastSeq);
    let seq = seqOf(cursor);
    const firstKept = firstSeq(log);
    // A cursor from before this log (a handshake while the topic had none, or the last
    // message of a removed log) reads it from its start when nothing was dropped from it and
    // no removed log had messages after the cursor.
    if (
      seq !== undefined &&
      seq < log.base &&
      firstKept - 1 === log.base &&
      nothingRemovedAfter(topic, seq)
    ) {
      seq = log.base;
    }
    // Unknown epoch (another process) or history trimmed past the cursor: resume just before
    // the oldest message kept, so nothing still here is skipped. A position this log never
    // reached: resume from the newest.
    if (seq === undefined || seq < firstKept - 1) {
      return { log: undefined, position: idOf(firstKept - 1), reset: true };
    }
    if (seq > log.lastSeq) return { log: undefined, position, reset: true };
    if (seq === log.lastSeq) return { log: undefined, position, reset: false };
    return { log, from: seq - firstKept + 1, position };
  }

  /** `read` after a cursor, answered at once (`Broker.readNow`). */
  function readNow(topic: string, cursor: string, limit: number): BrokerReadResult {
    const at = locate(topic, cursor);
    if (at.log === undefined) {
      return { messages: [], position: at.position, reset: at.reset, more: false };
    }
    const { log, from } = at;
    const to = Math.min(log.count, from + Math.max(0, limit));
    const messages = messagesOf(topic, log, from, to, true, prefix);
    const last = messages.at(-1);
    return {
      messages,
      position: last ? last.id : cursor,
      reset: false,
      more: to < log.count,
    };
  }

  /** `read` after a cursor as the messages' wire forms, at once (`Broker.readWire`). */
  function readWire(topic: string, cursor: string, limit: number, budget: number): BrokerWireRead {
    const at = locate(topic, cursor);
    if (at.log === undefined) {
      return {
        chunks: [],
        count: 0,
        bytes: 0,
        position: at.position,
        reset: at.reset,
        more: false,
      };
    }
    const { log, from } = at;
    const to = Math.min(log.count, from + Math.max(0, limit));
    const wire = wireOf(log, from, to, budget);
    return {
      chunks: wire.chunks,
      count: wire.count,
      bytes: wire.bytes,
      // Seqs are consecutive: the last one taken is `firstSeq + from + count - 1`.
      position: wire.count > 0 ? idOf(firstSeq(log) + from + wire.count - 1) : cursor,
      reset: false,
      more: from + wire.count < log.count,
    };
  }

  function assertOpen(): void {
    if (closed) throw new Error('memory broker is closed');
  }

  /** The newest id of `topic` (its "empty" position when nothing is kept). */
  function positionOf(topic: string): string {
    const log = logs.get(topic);
    // No history (never published to, or removed): the highest seq, which a later log of this
    // topic starts from.
    if (!log) return idOf(highestSeq);
    trimByAge(log, now());
    // The newest kept message is the last seq.
    return idOf(log.lastSeq);
  }

  const presenceStore = createMemoryPresence({ now, assertOpen, append, positionOf });

  return {
    epoch,

    // Not `async`: a burst of publishes makes one promise each, not three (less GC). The
    // topic is not validated here: the server checks it once at its edge.
    publish(topic, data, options?: BrokerPublishOptions) {
      if (closed) return Promise.reject(new Error('memory broker is closed'));
      try {
        const once = options?.idempotency;
        const json = options?.json;
        if (once === undefined) return Promise.resolve(append(topic, data, json));
        return Promise.resolve(
          idempotency.publishOnce(topic, once, () => append(topic, data, json)),
        );
      } catch (error) {
        return Promise.reject(error);
      }
    },

    read,
    readNow: Object.assign(readNow, { of: read }),
    readWire: Object.assign(readWire, { of: read }),

    async recent(topic, limit, recentOptions) {
      assertOpen();
      const log = logs.get(topic);
      if (!log) return { messages: [], position: idOf(highestSeq) };
      const time = now();
      trimByAge(log, time);
      let count = Math.min(log.count, Math.max(0, Math.floor(limit)));
      const maxAge = recentOptions?.maxAgeMs;
      if (maxAge !== undefined) {
        const oldest = time - maxAge;
        while (count > 0 && (log.times[slot(log, log.count - count)] as number) < oldest) {
          count -= 1;
        }
      }
      return {
        messages: messagesOf(topic, log, log.count - count, log.count, false, prefix),
        position: idOf(log.lastSeq),
      };
    },

    listen(topics, onPublish) {
      assertOpen();
      return listeners.add(topics, onPublish);
    },

    presence: presenceStore.presence,

    listenerCount() {
      return listeners.size();
    },

    usage() {
      return { topics: logs.size, messages: totalMessages, bytes: totalBytes };
    },

    async close() {
      closed = true;
      clearInterval(sweepTimer);
      logs.clear();
      listeners.clear();
      idempotency.clear();
      presenceStore.clear();
    },
  };
}
