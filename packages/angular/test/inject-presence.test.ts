import './setup-angular';
import { Component } from '@angular/core';
import { TestBed } from '@angular/core/testing';
import type { FakeBackend } from '@cometkit/test-utils';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { injectPresence } from '../src/index';
import { configure, createCometBackend } from './helpers';

const OnlineComponent = Component({
  selector: 'test-online',
  template: '@for (member of online(); track member.id) {<span>{{ member.userId }}</span>}',
})(
  class OnlineComponent {
    readonly online = injectPresence('room');
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

describe('injectPresence', () => {
  it('renders the members of the sync, then each join and leave', async () => {
    configure();
    const fixture = TestBed.createComponent(OnlineComponent);
    await vi.waitFor(() => expect(backend.held()).toHaveLength(1));
    expect(backend.polls.at(-1)?.body.topics).toEqual(['room@presence']);
    backend.publish('room@presence', { event: 'sync', members: [{ id: 'a', userId: 'ann' }] });
    await vi.waitFor(() => expect(fixture.nativeElement.textContent).toBe('ann'));
    backend.publish('room@presence', { event: 'join', member: { id: 'b', userId: 'bob' } });
    await vi.waitFor(() => expect(fixture.nativeElement.textContent).toBe('annbob'));
    backend.publish('room@presence', { event: 'leave', member: { id: 'a', userId: 'ann' } });
    await vi.waitFor(() => expect(fixture.nativeElement.textContent).toBe('bob'));
  });
});
