import { InjectionToken } from '@angular/core';
import type { CometClient } from '@cometkit/core';

/**
 * The `CometClient` of the current injector. `provideComet()` provides it; inject it for what
 * `CometService` does not wrap (`on('diagnostic', …)`, `unsubscribe`, `sessionGuid`).
 */
export const COMET_CLIENT = new InjectionToken<CometClient>('COMET_CLIENT');
