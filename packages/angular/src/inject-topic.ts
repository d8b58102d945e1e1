import { assertInInjectionContext, Injector, inject, type Signal } from '@angular/core';
import type { CometMessage } from '@cometkit/core';
import type { PresenceMember } from '@cometkit/core/presence';
import { CometService, type TopicMessagesOptions, type TopicSignalOptions } from './comet-service';

function injectorFor(injector: Injector | undefined, caller: (...args: never[]) => unknown) {
  if (injector) return injector;
  assertInInjectionContext(caller);
  return inject(Injector);
}

/**
 * The data of the newest message of `topic` as a signal, `undefined` before the first one.
 * Call it in an injection context (a field initializer or constructor), or pass `injector`;
 * the subscription ends when that injector is destroyed.
 *
 * @example
 * ```ts
 * export class PriceComponent {
 *   readonly price = injectTopic<{ value: number }>('prices:ACME');
 * }
 * ```
 */
export function injectTopic<T = unknown>(
  topic: string,
  options?: TopicSignalOptions,
): Signal<T | undefined> {
  const injector = injectorFor(options?.injector, injectTopic);
  return injector.get(CometService).topic<T>(topic, { injector });
}

/**
 * The last `keep` messages of `topic` (oldest first) as a signal, with the same lifetime rules
 * as {@link injectTopic}; with `rewind`, starting with the topic's recent history.
 *
 * @example
 * ```ts
 * readonly lines = injectTopicMessages<ChatLine>('chat:support', { keep: 50 });
 * readonly history = injectTopicMessages<ChatLine>('chat:support', { rewind: 50 });
 * ```
 */
export function injectTopicMessages<T = unknown>(
  topic: string,
  options?: TopicMessagesOptions,
): Signal<readonly CometMessage<T>[]> {
  const injector = injectorFor(options?.injector, injectTopicMessages);
  return injector.get(CometService).topicMessages<T>(topic, { ...options, injector });
}

/**
 * The members on `topic` now (this client too), in join order, as a signal; the client is on
 * the topic until the injection context (or `options.injector`) is destroyed. The server must
 * have `presence` on.
 *
 * @example
 * ```ts
 * readonly online = injectPresence('room');
 * ```
 */
export function injectPresence(
  topic: string,
  options?: TopicSignalOptions,
): Signal<readonly PresenceMember[]> {
  const injector = injectorFor(options?.injector, injectPresence);
  return injector.get(CometService).presence(topic, { injector });
}
