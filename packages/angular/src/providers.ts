import {
  DestroyRef,
  type EnvironmentProviders,
  inject,
  makeEnvironmentProviders,
  NgZone,
} from '@angular/core';
import { type CometClient, type CometClientOptions, createCometClient } from '@cometkit/core';
import { COMET_CLIENT } from './comet-client';
import { CometService } from './comet-service';

/** `provideComet({ client })`: use a client the application made and owns. */
export interface ProvideCometWithClient {
  /** The client to use. It is not closed when the application is destroyed: its owner closes it. */
  client: CometClient;
}

/** What {@link provideComet} takes: client options, or a ready client. */
export type ProvideCometConfig = CometClientOptions | ProvideCometWithClient;

function hasClient(config: ProvideCometConfig): config is ProvideCometWithClient {
  return typeof config === 'object' && config !== null && 'client' in config;
}

/**
 * Provides a cometkit client and {@link CometService} for an application or a route.
 *
 * The client is made outside `NgZone`, so the listeners it adds (online/offline, and the page
 * lifecycle: visibility, freeze/resume, pagehide/pageshow) never
 * keep a zone-based application from becoming stable. A client made here is closed when the
 * injector is destroyed; a client given as `{ client }` is left to its owner.
 *
 * @example
 * ```ts
 * bootstrapApplication(AppComponent, {
 *   providers: [provideComet({ url: '/api/comet', userId: 'ann' })],
 * });
 * ```
 */
export function provideComet(config: ProvideCometConfig = {}): EnvironmentProviders {
  return makeEnvironmentProviders([
    {
      provide: COMET_CLIENT,
      useFactory: (): CometClient => {
        if (hasClient(config)) return config.client;
        const client = inject(NgZone).runOutsideAngular(() => createCometClient(config));
        inject(DestroyRef).onDestroy(() => client.close());
        return client;
      },
    },
    // A factory rather than `@Injectable`: the library is built without the Angular compiler.
    { provide: CometService, useFactory: () => new CometService() },
  ]);
}
