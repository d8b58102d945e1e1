/**
 * What the server tells an observer as it works (the metrics of `metrics.ts` are one), and the
 * wrappers that produce most of it from the outside: a broker that times its calls and an
 * `authorize` hook that counts refusals. The request path itself only calls the observer at the
 * few points nothing outside can see (an answer's status, a connection, a delivery, a limit).
 * Without an observer nothing is wrapped and nothing is called.
 */
import type { Broker } from './broker';
import type { AuthorizeAction, AuthorizeHook } from './options';

/** The transports, as the client's options name them. */
export type TransportName = 'longpoll' | 'stream' | 'websocket';

/** What an HTTP answer answered. */
export type RouteName = 'poll' | 'stream' | 'send' | 'publish' | 'other';

/** What ran into a limit: a rate limit or the body size. */
export type LimitName = 'requests' | 'sends' | 'publishes' | 'body';

/** The broker calls that are timed. */
export type BrokerOperation = 'publish' | 'read' | 'recent';

/** Receives the server's events; every method must be cheap and must not throw. */
export interface ServerObserver {
  /** An HTTP answer was written in full (not when the client left first). */
  answered(route: RouteName, status: number): void;
  /** A stream or a WebSocket opened or closed. */
  connection(transport: 'stream' | 'websocket', change: 'open' | 'close'): void;
  /** A message was published through this server (any source). */
  published(topic: string): void;
  /** `count` messages of `topic` went out to one client on `transport`. */
  delivered(transport: TransportName, topic: string, count: number): void;
  /** A read found the cursor outside the topic's history: the client gets a reset. */
  reset(topic: string): void;
  /** The `authorize` hook refused a topic. */
  refused(action: AuthorizeAction, code: string): void;
  /** A broker call took `seconds`; `failed` when it rejected. */
  brokerCall(operation: BrokerOperation, seconds: number, failed: boolean): void;
  /** The broker reported that it lost its backing store. */
  brokerDown(): void;
  /** A request ran into a limit. */
  limited(limit: LimitName): void;
}

/** Reports `messages` as delivered on `transport`, one call per run of one topic. */
export function reportDelivered(
  observer: ServerObserver,
  transport: TransportName,
  messages: readonly { topic: string }[],
): void {
  let topic: string | undefined;
  let count = 0;
  for (const message of messages) {
    if (message.topic !== topic) {
      if (topic !== undefined) observer.delivered(transport, topic, count);
      topic = message.topic;
      count = 0;
    }
    count += 1;
  }
  if (topic !== undefined) observer.delivered(transport, topic, count);
}

/** A clock in seconds, monotonic. */
const now = () => performance.now() / 1000;

/**
 * `call()` timed as `operation`, then `onResult` with its result. One `then` per call (a burst
 * of publishes makes no extra promises beyond it).
 */
function timed<T>(
  observer: ServerObserver,
  operation: BrokerOperation,
  call: () => Promise<T>,
  onResult?: (result: T) => void,
): Promise<T> {
  const started = now();
  let promise: Promise<T>;
  try {
    promise = call();
  } catch (error) {
    observer.brokerCall(operation, now() - started, true);
    throw error;
  }
  return promise.then(
    (result) => {
      observer.brokerCall(operation, now() - started, false);
      onResult?.(result);
      return result;
    },
    (error: unknown) => {
      observer.brokerCall(operation, now() - started, true);
      throw error;
    },
  );
}

/**
 * The same broker, timing each call and reporting publishes and resets. `listen` and `close`
 * pass through untouched (a wake-up costs nothing extra).
 */
export function observeBroker(broker: Broker, observer: ServerObserver): Broker {
  return {
    publish: (topic, data, options) =>
      timed(
        observer,
        'publish',
        () => broker.publish(topic, data, options),
        () => observer.published(topic),
      ),
    read: (topic, cursor, limit) =>
      timed(
        observer,
        'read',
        () => broker.read(topic, cursor, limit),
        (result) => {
          if (result.reset) observer.reset(topic);
        },
      ),
    recent: (topic, limit, options) =>
      timed(observer, 'recent', () => broker.recent(topic, limit, options)),
    listen: (topics, onPublish) => broker.listen(topics, onPublish),
    ...(broker.presence ? { presence: broker.presence } : {}),
    ...(broker.onError
      ? {
          onError: (listener: (error: Error) => void) =>
            broker.onError?.((error) => {
              observer.brokerDown();
              listener(error);
            }) ?? (() => {}),
        }
      : {}),
    close: () => broker.close(),
  };
}

/** The same hook, reporting each refusal (a thrown hook counts as `internal`). */
export function observeAuthorize(hook: AuthorizeHook, observer: ServerObserver): AuthorizeHook {
  return async (context) => {
    let verdict: Awaited<ReturnType<AuthorizeHook>>;
    try {
      verdict = await hook(context);
    } catch (error) {
      observer.refused(context.action, 'internal');
      throw error;
    }
    if (verdict !== true) {
      const code = typeof verdict === 'object' && verdict !== null ? verdict.code : 'forbidden';
      observer.refused(context.action, String(code));
    }
    return verdict;
  };
}
