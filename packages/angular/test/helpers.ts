/** The Angular tests' setup: the fake backend, client options and a zoneless TestBed. */
import {
  type EnvironmentProviders,
  type Provider,
  provideZonelessChangeDetection,
} from '@angular/core';
import { TestBed } from '@angular/core/testing';
import { createFakeBackend, type FakeBackend, type SendHook } from '@cometkit/test-utils';
import { type CometClientOptions, provideComet } from '../src/index';

/** Where the fake backend answers; tests give this to `provideComet({ url })`. */
export const BASE_URL = 'http://localhost:3000/api/comet';

/** Refuses a chat line with an empty text, as the demo's server does. */
const refuseEmptyText: SendHook = ({ data }) => {
  const text = (data as { text?: unknown } | null)?.text;
  return text === ''
    ? { status: 400, code: 'bad_request', message: 'text must be 1 to 2000 characters' }
    : undefined;
};

/** The shared fake backend of @cometkit/test-utils at {@link BASE_URL}; `close()` it after the test. */
export function createCometBackend(): FakeBackend {
  return createFakeBackend({ url: BASE_URL, onSend: refuseEmptyText });
}

/** Client options for tests: the fake backend, long-poll, and no grace before stopping. */
export const clientOptions: CometClientOptions = {
  url: BASE_URL,
  transports: ['longpoll'],
  idleGrace: 0,
};

/** A zoneless TestBed with `provideComet(clientOptions)` unless `providers` say otherwise. */
export function configure(providers: (Provider | EnvironmentProviders)[] = []): void {
  TestBed.configureTestingModule({
    providers: [provideZonelessChangeDetection(), provideComet(clientOptions), ...providers],
  });
}
