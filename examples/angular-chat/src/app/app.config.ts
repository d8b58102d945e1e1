import { type ApplicationConfig, provideZonelessChangeDetection } from '@angular/core';
import { provideComet } from '@cometkit/angular';
import { memberHeaders } from '../../../shared/demo.js';

/** Zoneless (Angular's default since v21): cometkit's signals drive change detection. */
export const appConfig: ApplicationConfig = {
  providers: [
    provideZonelessChangeDetection(),
    provideComet({
      url: '/api/comet',
      transports: ['websocket', 'stream', 'longpoll'],
      // Who this page is in the room's presence list, once it joined (see server.mjs).
      headers: memberHeaders,
    }),
  ],
};
