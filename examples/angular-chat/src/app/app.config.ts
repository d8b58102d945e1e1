import { type ApplicationConfig, provideZonelessChangeDetection } from '@angular/core';
import { provideComet } from '@cometkit/angular';
import { createSharedCometClient } from '@cometkit/core/share';
import { memberHeaders } from '../../../shared/demo.js';

/**
 * The page's client, shared: the tabs of this browser with the same member hold one
 * connection between them. Made here (zoneless, so outside any zone) and given to the providers.
 */
const client = createSharedCometClient({
  url: '/api/comet',
  transports: ['websocket', 'stream', 'longpoll'],
  // Who this page is in the room's presence list, once it joined (see server.mjs).
  headers: memberHeaders,
});

/** Zoneless (Angular's default since v21): cometkit's signals drive change detection. */
export const appConfig: ApplicationConfig = {
  providers: [provideZonelessChangeDetection(), provideComet({ client })],
};
