import { assertInInjectionContext, type Injector, inject, type Signal } from '@angular/core';
import type { ConnectionState } from '@cometkit/core';
import { CometService } from './comet-service';

/** Options of {@link injectConnectionState}. */
export interface InjectConnectionStateOptions {
  /**
   * Where to find `CometService` outside an injection context.
   * @default the injector of the current injection context
   */
  injector?: Injector;
}

/**
 * The connection state as a signal (the application-wide one of `CometService.state`; reading
 * it starts nothing).
 *
 * @example
 * ```ts
 * readonly connection = injectConnectionState();
 * // template: @if (connection().status === 'reconnecting') { … }
 * ```
 */
export function injectConnectionState(
  options?: InjectConnectionStateOptions,
): Signal<ConnectionState> {
  if (options?.injector) return options.injector.get(CometService).state;
  assertInInjectionContext(injectConnectionState);
  return inject(CometService).state;
}
