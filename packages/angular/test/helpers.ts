import {
  type EnvironmentProviders,
  type Provider,
  provideZonelessChangeDetection,
} from '@angular/core';
import { TestBed } from '@angular/core/testing';
import { type CometClientOptions, provideComet } from '../src/index';
import { BASE_URL } from './comet-backend';

/** Client options for tests: the msw backend, long-poll, and no grace before stopping. */
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
