/**
 * Topic stores: an external store over one topic for UI bindings (React's
 * `useSyncExternalStore`, Angular signals). A store subscribes its topic while it has listeners
 * (ref-counted) and is cached per topic and `keep` only while it is in use.
 */
import type { ClientContext } from './context';
import { CometError } from './errors';
import type {
  MessageHandler,
  SubscribeOptions,
  TopicSnapshot,
  TopicStore,
  TopicStoreOptions,
} from './types';
import { checkStart, checkTopics } from './validate';

/** The topic stores of one client. */
export interface TopicStores {
  /** The store for `topic` and `keep`: the cached one, or a new one. */
  get(topic: string, options?: TopicStoreOptions): TopicStore;
  /** How many stores are cached right now. */
  readonly size: number;
  /** Forgets every store (on `close()`). */
  clear(): void;
}

/** `subscribe` as the stores use it: the client's, with its topic checks. */
type Subscribe = (topic: string, callback: MessageHandler, options: SubscribeOptions) => () => void;

/** Makes the stores of a client; `subscribe` follows a topic. */
export function createTopicStores(context: ClientContext, subscribe: Subscribe): TopicStores {
  const stores = new Map<string, TopicStore>();

  function make(key: string, topic: string, keep: number, start: SubscribeOptions): TopicStore {
    let snapshot: TopicSnapshot = { latest: undefined, messages: [] };
    const listeners = new Set<{ onChange: () => void }>();
    let stopTopic: (() => void) | undefined;
    const store: TopicStore = {
      getSnapshot: () => snapshot,
      subscribe(onChange) {
        if (context.closed) return () => {};
        const entry = { onChange };
        listeners.add(entry);
        // Cached again when started again (e.g. React StrictMode's second mount holds this
        // store), unless a newer store for the key took its place meanwhile.
        if (!stores.has(key)) stores.set(key, store);
        stopTopic ??= subscribe(
          topic,
          (_data, message) => {
            snapshot = { latest: message, messages: [...snapshot.messages, message].slice(-keep) };
            for (const listener of [...listeners]) context.events.call(listener.onChange, []);
          },
          // Started again: after the latest message it has, so the snapshot never repeats one.
          // (Without a cursor or rewind a store starts from the server's current position.)
          {
            ...start,
            cursor:
              start.cursor || start.rewind || start.since
                ? (snapshot.latest?.id ?? start.cursor)
                : undefined,
          },
        );
        return () => {
          if (listeners.delete(entry) && listeners.size === 0) {
            stopTopic?.();
            stopTopic = undefined;
            // Not kept once unused, so an app that goes through many topics does not keep
            // every one's store and messages. Whoever holds it may start it again.
            if (stores.get(key) === store) stores.delete(key);
          }
        };
      },
    };
    return store;
  }

  return {
    get(topic, options) {
      checkTopics([topic]);
      const { cursor, rewind } = checkStart(options);
      const keep = options?.keep ?? rewind?.count ?? 1;
      if (!Number.isInteger(keep) || keep < 1)
        throw new CometError(`keep must be an integer >= 1: ${keep}`);
      // A space never occurs in a topic, so the key is unambiguous.
      const key = `${keep} ${rewind?.count ?? ''} ${rewind?.since ?? ''} ${topic}`;
      let store = stores.get(key);
      if (!store) {
        store = make(key, topic, keep, { cursor, rewind: rewind?.count, since: rewind?.since });
        stores.set(key, store);
      }
      return store;
    },
    get size() {
      return stores.size;
    },
    clear() {
      stores.clear();
    },
  };
}
