import './setup-angular';
import {
  ApplicationRef,
  Component,
  inject,
  NgZone,
  provideZonelessChangeDetection,
} from '@angular/core';
import { toSignal } from '@angular/core/rxjs-interop';
import { TestBed } from '@angular/core/testing';
import type { FakeBackend } from '@cometkit/test-utils';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { CometService, injectTopic, provideComet } from '../src/index';
import { clientOptions, createCometBackend } from './helpers';

const NewsComponent = Component({
  selector: 'test-news',
  template: '{{ signalled() ?? "none" }}|{{ observed() ?? "none" }}',
})(
  class NewsComponent {
    readonly signalled = injectTopic<string>('news');
    readonly observed = toSignal(inject(CometService).topic$<string>('alerts'));
  },
);

/** True once one held poll carries both topics of the component. */
const bothHeld = (backend: FakeBackend) =>
  backend.held().some((poll) => poll.topics.includes('news') && poll.topics.includes('alerts'));

let backend: FakeBackend;

beforeEach(() => {
  backend = createCometBackend();
  TestBed.configureTestingModule({
    providers: [provideZonelessChangeDetection(), provideComet({ ...clientOptions, wait: 20_000 })],
  });
});

afterEach(() => {
  TestBed.resetTestingModule();
  backend.close();
});

describe('zoneless', () => {
  it('runs without zone.js', () => {
    expect(TestBed.inject(NgZone).constructor.name).not.toBe('NgZone');
  });

  it('updates the view from signals and observables', async () => {
    const fixture = TestBed.createComponent(NewsComponent);
    await fixture.whenStable();
    expect(fixture.nativeElement.textContent).toBe('none|none');
    await vi.waitFor(() => expect(bothHeld(backend)).toBe(true));
    backend.publish('news', 'signal news');
    backend.publish('alerts', 'observed alert');
    await vi.waitFor(() =>
      expect(fixture.nativeElement.textContent).toBe('signal news|observed alert'),
    );
  });

  it('is stable while a poll is held', async () => {
    const fixture = TestBed.createComponent(NewsComponent);
    await vi.waitFor(() => expect(bothHeld(backend)).toBe(true));
    await fixture.whenStable();
    await TestBed.inject(ApplicationRef).whenStable();
    expect(bothHeld(backend)).toBe(true);
  });
});
