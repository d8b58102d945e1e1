/**
 * The memory broker's presence: who is present on each presence topic until their TTL ends, each
 * join and leave appended to the topic's history in the same synchronous step as the entry.
 */
import type { BrokerPresence, BrokerPresenceMember } from '../broker';

/** A present member of a presence topic and when its TTL ends. */
interface PresenceEntry {
  member: BrokerPresenceMember;
  /** `userId` and `data` as JSON: a join with other ones is published again. */
  key: string;
  expiresAt: number;
}

/** What the presence store needs from its broker. */
export interface MemoryPresenceHost {
  now: () => number;
  /** Throws when the broker is closed. */
  assertOpen: () => void;
  /** Appends a join or leave event to `topic`'s history. */
  append: (topic: string, data: unknown) => string;
  /** The newest id of `topic`. */
  positionOf: (topic: string) => string;
}

/** The presence half of a memory broker, and `clear` for its close. */
export interface MemoryPresence {
  presence: BrokerPresence;
  clear(): void;
}

/** Creates the presence store of one memory broker. */
export function createMemoryPresence(host: MemoryPresenceHost): MemoryPresence {
  const { now, assertOpen, append, positionOf } = host;
  const present = new Map<string, Map<string, PresenceEntry>>();

  /** Removes the expired members of presence `topic`, publishing a leave for each. */
  function sweepPresence(topic: string): void {
    const entries = present.get(topic);
    if (!entries) return;
    const time = now();
    for (const [id, entry] of entries) {
      if (entry.expiresAt > time) continue;
      entries.delete(id);
      append(topic, { event: 'leave', member: entry.member });
    }
    if (entries.size === 0) present.delete(topic);
  }

  // Each method is one synchronous step: the entry and its join or leave change together.
  const presence: BrokerPresence = {
    async join(topic, member, ttlMs) {
      assertOpen();
      // An expired member that comes back leaves first, as on Redis.
      sweepPresence(topic);
      let entries = present.get(topic);
      if (!entries) {
        entries = new Map();
        present.set(topic, entries);
      }
      const key = JSON.stringify([member.userId, member.data]);
      const entry = entries.get(member.id);
      const expiresAt = now() + ttlMs;
      if (entry && entry.key === key) {
        entry.expiresAt = expiresAt;
        return;
      }
      entries.set(member.id, { member, key, expiresAt });
      append(topic, { event: 'join', member });
    },
    async leave(topic, memberId) {
      assertOpen();
      const entries = present.get(topic);
      const entry = entries?.get(memberId);
      if (!entries || !entry) return;
      entries.delete(memberId);
      if (entries.size === 0) present.delete(topic);
      append(topic, { event: 'leave', member: entry.member });
    },
    async sweep(topic) {
      assertOpen();
      sweepPresence(topic);
    },
    async snapshot(topic) {
      assertOpen();
      sweepPresence(topic);
      const members = [...(present.get(topic)?.values() ?? [])].map((entry) => entry.member);
      return { members, position: positionOf(topic) };
    },
  };

  return {
    presence,
    clear() {
      present.clear();
    },
  };
}
