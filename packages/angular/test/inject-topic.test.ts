import './setup-angular';
import { Component, Injector } from '@angular/core';
import { TestBed } from '@angular/core/testing';
import type { FakeBackend } from '@cometkit/test-utils';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { CometService, injectTopic, injectTopicMessages } from '../src/index';
import { configure, createCometBackend } from './helpers';

// Test components are declared with the decorator called as a function: no decorator syntax
// needed from the test transform, the same metadata for Angular's JIT compiler.
const NewsComponent = Component({
  selector: 'test-news',
  template: '<p>{{ headline()?.title ?? "none" }}</p>',
})(
  class NewsComponent {
    readonly headline = injectTopic<{ title: string }>('news');
  },
);

const TickerComponent = Component({
  selector: 'test-ticker',
  template: '@for (tick of ticks(); track tick.id) {<span>{{ tick.data }}</span>}',
})(
  class TickerComponent {
    readonly ticks = injectTopicMessages<string>('ticker', { keep: 3 });
  },
);

let backend: FakeBackend;

beforeEach(() => {
  backend = createCometBackend();
});

afterEach(() => {
  TestBed.resetTestingModule();
  backend.close();
});

describe('injectTopic', () => {
  it('renders the newest data of the topic in a component', async () => {
    configure();
    const fixture = TestBed.createComponent(NewsComponent);
    await fixture.whenStable();
    expect(fixture.nativeElement.textContent).toBe('none');
    await vi.waitFor(() => expect(backend.held()).toHaveLength(1));
    backend.publish('news', { title: 'Comet sighted' });
    await vi.waitFor(() => expect(fixture.nativeElement.textContent).toBe('Comet sighted'));
  });

  it('ends the subscription with the component: the held poll is dropped, none follows', async () => {
    configure();
    const fixture = TestBed.createComponent(NewsComponent);
    await vi.waitFor(() => expect(backend.held()).toHaveLength(1));
    const before = backend.polls.length;
    fixture.destroy();
    await vi.waitFor(() => expect(backend.held()).toHaveLength(0));
    expect(backend.polls.at(-1)?.aborted).toBe(true);
    await vi.waitFor(() => expect(TestBed.inject(CometService).state().status).toBe('idle'));
    backend.publish('news', { title: 'after destroy' });
    expect(backend.polls).toHaveLength(before);
  });

  it('works outside an injection context when given an injector', async () => {
    configure();
    const injector = TestBed.inject(Injector);
    expect(() => injectTopic('news')).toThrow(/injection context/);
    const headline = injectTopic<string>('news', { injector });
    await vi.waitFor(() => expect(backend.held()).toHaveLength(1));
    backend.publish('news', 'from outside');
    await vi.waitFor(() => expect(headline()).toBe('from outside'));
  });
});

const HistoryComponent = Component({
  selector: 'test-history',
  template: '@for (line of lines(); track line.id) {<span>{{ line.data }}</span>}',
})(
  class HistoryComponent {
    readonly lines = injectTopicMessages<string>('room', { rewind: 2 });
  },
);

describe('injectTopicMessages', () => {
  it('starts with the last `rewind` messages from history, then live ones, keeping as many', async () => {
    for (const line of ['a', 'b', 'c']) backend.publish('room', line);
    configure();
    const fixture = TestBed.createComponent(HistoryComponent);
    await vi.waitFor(() => expect(fixture.nativeElement.textContent).toBe('bc'));
    await vi.waitFor(() => expect(backend.held()).toHaveLength(1));
    backend.publish('room', 'd');
    await vi.waitFor(() => expect(fixture.nativeElement.textContent).toBe('cd'));
  });

  it('renders the last `keep` messages', async () => {
    configure();
    const fixture = TestBed.createComponent(TickerComponent);
    await vi.waitFor(() => expect(backend.held()).toHaveLength(1));
    for (const tick of ['a', 'b', 'c', 'd']) backend.publish('ticker', tick);
    await vi.waitFor(() => expect(fixture.nativeElement.textContent).toBe('bcd'));
  });
});
