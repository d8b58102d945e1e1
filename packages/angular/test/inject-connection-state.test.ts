import './setup-angular';
import { Component, Injector } from '@angular/core';
import { TestBed } from '@angular/core/testing';
import type { FakeBackend } from '@cometkit/test-utils';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { CometService, injectConnectionState, injectTopic } from '../src/index';
import { configure, createCometBackend } from './helpers';

const StatusComponent = Component({
  selector: 'test-status',
  template: '{{ connection().status }}',
})(
  class StatusComponent {
    readonly connection = injectConnectionState();
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

describe('injectConnectionState', () => {
  it('renders the connection state as it changes', async () => {
    configure();
    const fixture = TestBed.createComponent(StatusComponent);
    await fixture.whenStable();
    expect(fixture.nativeElement.textContent).toBe('idle');
    TestBed.runInInjectionContext(() => injectTopic('news'));
    await vi.waitFor(() => expect(fixture.nativeElement.textContent).toBe('connected'));
  });

  it('is the service-wide state signal, also outside an injection context', () => {
    configure();
    const injector = TestBed.inject(Injector);
    expect(() => injectConnectionState()).toThrow(/injection context/);
    expect(injectConnectionState({ injector })).toBe(TestBed.inject(CometService).state);
  });
});
