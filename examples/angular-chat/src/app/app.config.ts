import { type ApplicationConfig, provideZonelessChangeDetection } from '@angular/core';
import { provideComet } from '@cometkit/angular';

/** Zoneless (Angular's default since v21): cometkit's signals drive change detection. */
export const appConfig: ApplicationConfig = {
  providers: [
    provideZonelessChangeDetection(),
    provideComet({ url: '/api/comet', transports: ['websocket', 'stream', 'longpoll'] }),
  ],
};
