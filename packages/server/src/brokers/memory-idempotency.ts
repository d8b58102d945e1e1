/**
 * The memory broker's idempotency store: the id the first publish with a key got, kept for the
 * key's TTL and bounded in count (the oldest records go first).
 */
import type { BrokerPublishOptions } from '../broker';

interface IdempotencyRecord {
  /** The message id the first publish with the key got. */
  id: string;
  expiresAt: number;
}

/** The idempotency records of one memory broker. */
export interface MemoryIdempotency {
  /**
   * The id of an earlier publish with `once.key` to `topic` still within its TTL, or else the id
   * `append()` answers, recorded under the key.
   */
  publishOnce(
    topic: string,
    once: NonNullable<BrokerPublishOptions['idempotency']>,
    append: () => string,
  ): string;
  clear(): void;
}

/** Creates an idempotency store keeping at most `maxKeys` records. */
export function createMemoryIdempotency(maxKeys: number, now: () => number): MemoryIdempotency {
  // Idempotency records by topic and key. A Map keeps insertion order, so the first keys are
  // the oldest when trimming.
  const records = new Map<string, IdempotencyRecord>();
  return {
    publishOnce(topic, once, append) {
      // The check, the append and the record are one synchronous step: no other publish (and
      // no crash short of the process's, which takes the whole broker with it) comes between.
      const recordKey = `${topic.length}:${topic}${once.key}`;
      const time = now();
      const record = records.get(recordKey);
      if (record !== undefined && record.expiresAt > time) return record.id;
      const id = append();
      records.delete(recordKey);
      records.set(recordKey, { id, expiresAt: time + once.ttlMs });
      // Bounded: the oldest records (first in the Map's order) make room.
      if (records.size > maxKeys) {
        for (const oldKey of records.keys()) {
          records.delete(oldKey);
          if (records.size <= maxKeys) break;
        }
      }
      return id;
    },
    clear() {
      records.clear();
    },
  };
}
