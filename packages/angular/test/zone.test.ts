// zone.js first: this file checks the zone-based application (the rest of the suite is zoneless).
import 'zone.js';
import './setup-angular';
import {
  ApplicationRef,
  Component,
  inject,
  NgZone,
  provideZoneChangeDetection,
} from '@angular/core';
import { takeUntilDestroyed } from '@angular/core/rxjs-interop';
import { TestBed } from '@angular/core/testing';
import type { FakeBackend } from '@cometkit/test-utils';
import { filter, firstValueFrom } from 'rxjs';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { CometService, injectTopic, provideComet } from '../src/index';
import { clientOptions, createCometBackend } from './helpers';

const NewsComponent = Component({
  selector: 'test-news',
  template: '<p>{{ signalled() ?? "none" }}|{{ observed }}</p>',
})(
  class NewsComponent {
    readonly signalled = injectTopic<string>('news');
    // A plain field set from an observable: only zone re-entry makes the view see it.
    observed = 'none';
    constructor() {
      inject(CometService)
        .topic$<string>('alerts')
        .pipe(takeUntilDestroyed())
        .subscribe((alert) => {
          this.observed = alert;
        });
    }
  },
);

/** True once one held poll carries both topics of the component. */
const bothHeld = (backend: FakeBackend) =>
  backend.held().some((poll) => poll.topics.includes('news') && poll.topics.includes('alerts'));

let backend: FakeBackend;

beforeEach(() => {
  backend = createCometBackend();
  TestBed.configureTestingModule({
    providers: [provideZoneChangeDetection(), provideComet(clientOptions)],
  });
});

afterEach(() => {
  TestBed.resetTestingModule();
  backend.close();
});

describe('with zone.js', () => {
  it('lets ApplicationRef.isStable become true while a poll is held', async () => {
    // A long wait: if the poll ran inside the zone, the app would stay unstable until it ends.
    TestBed.resetTestingModule();
    TestBed.configureTestingModule({
      providers: [provideZoneChangeDetection(), provideComet({ ...clientOptions, wait: 20_000 })],
    });
    const fixture = TestBed.createComponent(NewsComponent);
    fixture.autoDetectChanges();
    await vi.waitFor(() => expect(bothHeld(backend)).toBe(true));
    const appRef = TestBed.inject(ApplicationRef);
    await firstValueFrom(appRef.isStable.pipe(filter(Boolean)));
    expect(bothHeld(backend)).toBe(true);
    expect(NgZone.isInAngularZone()).toBe(false);
  });

  it('updates the view from signals and from observables', async () => {
    const fixture = TestBed.createComponent(NewsComponent);
    fixture.autoDetectChanges();
    await vi.waitFor(() => expect(bothHeld(backend)).toBe(true));
    backend.publish('news', 'signal news');
    await vi.waitFor(() => expect(fixture.nativeElement.textContent).toBe('signal news|none'));
    backend.publish('alerts', 'observed alert');
    await vi.waitFor(() =>
      expect(fixture.nativeElement.textContent).toBe('signal news|observed alert'),
    );
  });

  it("starts the client's requests and timers outside the Angular zone", async () => {
    const inZone: boolean[] = [];
    const fetch: typeof globalThis.fetch = (input, init) => {
      inZone.push(NgZone.isInAngularZone());
      return globalThis.fetch(input, init);
    };
    const setTimeout = (callback: () => void, ms: number) => {
      inZone.push(NgZone.isInAngularZone());
      return globalThis.setTimeout(callback, ms);
    };
    TestBed.resetTestingModule();
    TestBed.configureTestingModule({
      providers: [
        provideZoneChangeDetection(),
        provideComet({ ...clientOptions, environment: { fetch, setTimeout } }),
      ],
    });
    const fixture = TestBed.createComponent(NewsComponent);
    fixture.autoDetectChanges();
    await vi.waitFor(() => expect(bothHeld(backend)).toBe(true));
    const zone = TestBed.inject(NgZone);
    // Called from a click handler, i.e. inside the zone; its continuation stays there.
    const continuedInZone = await zone.run(() =>
      TestBed.inject(CometService)
        .send('chat', { text: 'hi' })
        .then(() => NgZone.isInAngularZone()),
    );
    expect(continuedInZone).toBe(true);
    expect(backend.sends).toHaveLength(1);
    expect(inZone.length).toBeGreaterThanOrEqual(2);
    expect(inZone.every((inside) => !inside)).toBe(true);
  });
});
