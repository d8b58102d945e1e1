import {
  assertInInjectionContext,
  DestroyRef,
  type Injector,
  inject,
  NgZone,
  PLATFORM_ID,
  type Signal,
  signal,
} from '@angular/core';
import type {
  CometClient,
  CometMessage,
  ConnectionState,
  SubscribeOptions,
  TopicStore,
} from '@cometkit/core';
import { type PresenceMember, presence } from '@cometkit/core/presence';
import { Observable } from 'rxjs';
import { COMET_CLIENT } from './comet-client';

/** Options of {@link CometService.topic}. */
export interface TopicSignalOptions {
  /**
   * The injector whose destruction ends the subscription. Needed only outside an injection
   * context (e.g. in an event handler or `ngOnInit`).
   * @default the injector of the current injection context
   */
  injector?: Injector;
}

/** Options of {@link CometService.topicMessages}. */
export interface TopicMessagesOptions extends TopicSignalOptions {
  /**
   * How many recent messages the signal holds.
   * @default 1, or `rewind` when given
   */
  keep?: number;
  /**
   * Start a topic not yet followed with up to this many of its recent messages from the
   * server's history, then live ones (see the core's `SubscribeOptions.rewind`).
   * @default undefined (no history)
   */
  rewind?: number;
  /**
   * Only the recent messages of the last `since` ms (see the core's `SubscribeOptions.since`).
   * @default undefined (any age)
   */
  since?: number;
}

/**
 * The Angular face of a `CometClient`: signals and observables over topics and the connection
 * state. Get it with `inject(CometService)` or constructor injection after `provideComet()`.
 *
 * Everything that starts requests or timers runs outside `NgZone`, so a held long-poll never
 * keeps the application unstable; observables emit back inside the zone, and
 * signals notify Angular's scheduler, so views update with zone.js or zoneless.
 */
export class CometService {
  /** The underlying client, for what this service does not wrap. */
  readonly client: CometClient = inject(COMET_CLIENT);

  readonly #zone = inject(NgZone);
  readonly #destroyRef = inject(DestroyRef);
  // During server rendering nothing subscribes: a poll from the server would only delay the
  // render, and the browser connects after hydration anyway.
  readonly #isServer = inject(PLATFORM_ID) === 'server';
  readonly #state = signal<ConnectionState>(this.client.getState());

  /** The connection state, e.g. `{ status: 'connected', transport: 'websocket' }`. */
  readonly state: Signal<ConnectionState> = this.#state.asReadonly();

  /** The connection state as an observable: the current state at once, then each change. */
  readonly state$: Observable<ConnectionState> = new Observable<ConnectionState>((subscriber) => {
    let last: ConnectionState | undefined;
    // States are immutable snapshots, so identity tells a real change.
    const emit = (state: ConnectionState) => {
      if (state === last) return;
      last = state;
      this.#inside(() => subscriber.next(state));
    };
    const unsubscribe = this.#outside(() => this.client.subscribeState(emit));
    emit(this.client.getState());
    const forget = this.#destroyRef.onDestroy(() => subscriber.complete());
    return () => {
      forget();
      unsubscribe();
    };
  });

  constructor() {
    const stop = this.#outside(() => this.client.subscribeState((state) => this.#state.set(state)));
    this.#destroyRef.onDestroy(stop);
  }

  /**
   * The data of the newest message of `name`, `undefined` before the first one. Subscribes at
   * once and unsubscribes when the injection context (or `options.injector`) is destroyed.
   */
  topic<T = unknown>(name: string, options?: TopicSignalOptions): Signal<T | undefined> {
    const destroyRef = destroyRefFor(options?.injector, this.topic);
    return this.#bind(
      this.client.topicStore(name) as TopicStore<T>,
      (snapshot) => snapshot.latest?.data,
      destroyRef,
    );
  }

  /**
   * The last `keep` messages of `name`, oldest first (a new array on each message), starting
   * with its recent history when `rewind` or `since` is given. Same lifetime as
   * {@link CometService.topic}.
   */
  topicMessages<T = unknown>(
    name: string,
    options?: TopicMessagesOptions,
  ): Signal<readonly CometMessage<T>[]> {
    const destroyRef = destroyRefFor(options?.injector, this.topicMessages);
    return this.#bind(
      this.client.topicStore(name, {
        keep: options?.keep,
        rewind: options?.rewind,
        since: options?.since,
      }) as TopicStore<T>,
      (snapshot) => snapshot.messages,
      destroyRef,
    );
  }

  /**
   * The members on `name` now (this client too), in join order: being on the topic while the
   * injection context (or `options.injector`) lives. The server must have `presence` on.
   */
  presence(name: string, options?: TopicSignalOptions): Signal<readonly PresenceMember[]> {
    const destroyRef = destroyRefFor(options?.injector, this.presence);
    return this.#bind(presence(this.client, name), (members) => members, destroyRef);
  }

  /**
   * Each message's `data` on `name`, in order, once. Cold and ref-counted: subscribing
   * subscribes the topic, unsubscribing (or destroying the application) releases it.
   * `options.cursor` continues after a message the application already has (from a history
   * endpoint).
   */
  topic$<T = unknown>(name: string, options?: SubscribeOptions): Observable<T> {
    return this.#messages<T, T>(name, options, (message) => message.data);
  }

  /** Like {@link CometService.topic$}, with whole messages (`topic`, `id`, `data`). */
  messages$<T = unknown>(name: string, options?: SubscribeOptions): Observable<CometMessage<T>> {
    return this.#messages<T, CometMessage<T>>(name, options, (message) => message);
  }

  /**
   * Publishes `data` to `topic` through the server.
   * @returns the broker's id of the published message (`undefined` from a server of the
   * original design); rejects with a `CometError`.
   */
  send<T>(topic: string, data: T): Promise<string | undefined> {
    // With zone.js the caller's `then`/`await` continues in the caller's zone, so only the
    // request itself needs to leave it.
    return this.#outside(() => this.client.send(topic, data));
  }

  /** Drops the current request or connection and connects again now. */
  reconnect(reason?: string): void {
    this.#outside(() => this.client.reconnect(reason));
  }

  #outside<R>(fn: () => R): R {
    return this.#zone.runOutsideAngular(fn);
  }

  #inside(fn: () => void): void {
    this.#zone.run(fn);
  }

  #bind<S, R>(
    store: { subscribe(onChange: () => void): () => void; getSnapshot(): S },
    project: (snapshot: S) => R,
    destroyRef: DestroyRef,
  ): Signal<R> {
    if (this.#isServer) return signal(project(store.getSnapshot())).asReadonly();
    // Setting a signal notifies Angular's scheduler from any zone, so no `zone.run` per message.
    const value = signal(project(store.getSnapshot()));
    const unsubscribe = this.#outside(() =>
      store.subscribe(() => value.set(project(store.getSnapshot()))),
    );
    destroyRef.onDestroy(() => this.#outside(unsubscribe));
    return value.asReadonly();
  }

  #messages<T, R>(
    name: string,
    options: SubscribeOptions | undefined,
    project: (message: CometMessage<T>) => R,
  ): Observable<R> {
    return new Observable<R>((subscriber) => {
      if (this.#isServer) return;
      const unsubscribe = this.#outside(() =>
        this.client.subscribe(
          name,
          (_data, message) =>
            this.#inside(() => subscriber.next(project(message as CometMessage<T>))),
          options,
        ),
      );
      // A subscription left open by its owner still ends with the application.
      const forget = this.#destroyRef.onDestroy(() => subscriber.complete());
      return () => {
        forget();
        this.#outside(unsubscribe);
      };
    });
  }
}

/** The `DestroyRef` that ends a signal's subscription: the given injector's, or the context's. */
function destroyRefFor(
  injector: Injector | undefined,
  caller: (...args: never[]) => unknown,
): DestroyRef {
  if (injector) return injector.get(DestroyRef);
  assertInInjectionContext(caller);
  return inject(DestroyRef);
}
