/**
 * The `listen()` side of a broker: who listens to which topic, and the wake-up of a publish.
 * Every broker needs the same one (the memory broker and `@cometkit/redis` use it), so it is
 * exported for broker authors with one set of rules:
 *
 * - a wake-up reaches exactly the listeners present when it began: one added or removed by a
 *   listener during it takes effect from the next wake-up;
 * - a listener that throws does not keep the others asleep (`onListenerError` hears of it);
 * - the function `add` returns removes the listener once, from every topic; calling it again
 *   does nothing.
 *
 * A wake-up iterates the topic's set in place, with no copy per publish: an add or remove
 * during one replaces the set with a copy instead of touching the set being iterated.
 */

/** A `Broker.listen` callback: a wake-up only, the listener reads with `Broker.read`. */
export type TopicListener = (topic: string) => void;

/** Options of {@link createListenerRegistry}. */
export interface ListenerRegistryOptions {
  /**
   * Hears of a listener that threw (the other listeners were still called).
   * @default undefined (ignored)
   */
  onListenerError?: (error: unknown, topic: string) => void;
}

/** The listeners of a broker by topic; see the rules above. */
export interface ListenerRegistry {
  /** Adds `listener` for `topics` (duplicates count once); returns the function that removes it. */
  add(topics: readonly string[], listener: TopicListener): () => void;
  /** Wakes the listeners of `topic`. */
  notify(topic: string): void;
  /** Wakes every listener for each of its topics (wake-ups may have been lost: read again). */
  notifyAll(): void;
  /**
   * How many listeners are registered (one per `add` not yet removed), without the server's
   * own listeners on reserved topics (those starting with `_`: its control channel).
   */
  size(): number;
  /** Removes every listener. */
  clear(): void;
}

interface TopicListeners {
  set: Set<TopicListener>;
  /** Wake-ups iterating `set` right now (nested when a listener publishes). */
  busy: number;
}

/** Makes an empty {@link ListenerRegistry}. */
export function createListenerRegistry(options: ListenerRegistryOptions = {}): ListenerRegistry {
  const onListenerError = options.onListenerError;
  const byTopic = new Map<string, TopicListeners>();
  let count = 0;

  /** The listeners of `topic` to change: a copy when a wake-up is iterating the current set. */
  function writable(topic: string, create: boolean): TopicListeners | undefined {
    let entry = byTopic.get(topic);
    if (entry === undefined) {
      if (!create) return undefined;
      entry = { set: new Set(), busy: 0 };
      byTopic.set(topic, entry);
    } else if (entry.busy > 0) {
      entry = { set: new Set(entry.set), busy: 0 };
      byTopic.set(topic, entry);
    }
    return entry;
  }

  function notify(topic: string): void {
    const entry = byTopic.get(topic);
    if (entry === undefined) return;
    entry.busy += 1;
    try {
      for (const listener of entry.set) {
        try {
          listener(topic);
        } catch (error) {
          onListenerError?.(error, topic);
        }
      }
    } finally {
      entry.busy -= 1;
    }
  }

  return {
    add(topics, listener) {
      // The common poll has one topic: no Set and array made for it.
      const unique = topics.length === 1 ? topics : [...new Set(topics)];
      for (const topic of unique) writable(topic, true)?.set.add(listener);
      const counted = unique.some((topic) => !topic.startsWith('_'));
      if (counted) count += 1;
      let active = true;
      return () => {
        if (!active) return;
        active = false;
        if (counted) count -= 1;
        for (const topic of unique) {
          const entry = writable(topic, false);
          if (!entry) continue;
          entry.set.delete(listener);
          if (entry.set.size === 0) byTopic.delete(topic);
        }
      };
    },

    notify,

    notifyAll() {
      for (const topic of [...byTopic.keys()]) notify(topic);
    },

    size() {
      return count;
    },

    clear() {
      byTopic.clear();
      count = 0;
    },
  };
}
