/**
 * `createCometClient`: wires the parts of a client and exposes the public API. The parts:
 * `context.ts` (options, environment, events, credentials), `topic-registry.ts` (callbacks,
 * cursors, delivery), `connection.ts` (the attempt lifecycle over `transports/ladder.ts`, with
 * `policy.ts` deciding after failures), `send-queue.ts` and `topic-store.ts`. See
 * docs/architecture.md.
 */
import { createConnection } from './connection';
import { createContext } from './context';
import { ClosedError, CometError } from './errors';
import { type CometClientOptions, resolveOptions } from './options';
import { createSendQueue } from './send-queue';
import { createTopicRegistry } from './topic-registry';
import { createTopicStores } from './topic-store';
import type { CometClient, MessageHandler, SubscribeOptions, TopicMap } from './types';
import { checkStart, checkTopics, list, topicError } from './validate';

/**
 * Creates a client. Nothing runs until the first `subscribe` or `send`.
 * @throws `CometError` for an invalid option.
 */
export function createCometClient<Topics extends TopicMap = TopicMap>(
  options?: CometClientOptions,
): CometClient<Topics> {
  const context = createContext(resolveOptions(options));
  const registry = createTopicRegistry(
    context,
    () => connection.topicsChanged(),
    (error, topic) => connection.authRefused(error, topic),
  );
  const sends = createSendQueue(context, () => connection, registry);
  const connection = createConnection(context, registry, sends);

  const subscribe = (
    topic: string | readonly string[],
    callback: MessageHandler,
    subscribeOptions?: SubscribeOptions,
  ) => {
    if (context.closed) throw new ClosedError();
    const topics = list(topic);
    checkTopics(topics);
    if (typeof callback !== 'function') throw new CometError('callback must be a function');
    return registry.add(topics, callback, checkStart(subscribeOptions));
  };
  // Through the public method, as an application's own subscription would go (a wrapper or spy
  // on the client sees the stores' subscriptions too).
  const stores = createTopicStores(context, (topic, callback, storeOptions) =>
    client.subscribe(topic, callback, storeOptions),
  );

  const client: CometClient = {
    sessionGuid: context.sessionGuid,
    url: context.options.url,
    subscribe: subscribe as CometClient['subscribe'],

    unsubscribe(topic) {
      const topics = topic === undefined ? registry.topics() : list(topic);
      checkTopics(topics);
      registry.remove(topics);
    },

    send(topic, data) {
      if (context.closed) return Promise.reject(new ClosedError());
      const error = topicError(topic);
      if (error) return Promise.reject(error);
      const sent = sends.send(topic, data);
      connection.watchOnline();
      return sent;
    },

    reconnect(reason) {
      if (!context.closed) connection.reconnect(reason);
    },

    close() {
      if (context.closed) return;
      sends.close();
      connection.close();
      registry.clear();
      stores.clear();
      context.events.clear();
    },

    getState: connection.getState,

    subscribeState(listener) {
      return client.on('state', (next) => listener(next));
    },

    on(event, listener) {
      if (context.closed) return () => {};
      return context.events.on(event, listener);
    },

    // The store's types come from the caller's topic map; at runtime every store is the same.
    topicStore: (topic, storeOptions) => stores.get(topic, storeOptions) as never,
  };
  return client as unknown as CometClient<Topics>;
}
