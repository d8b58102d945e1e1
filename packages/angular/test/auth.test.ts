import './setup-angular';
import type { IncomingMessage } from 'node:http';
import { Component, provideZonelessChangeDetection } from '@angular/core';
import { TestBed } from '@angular/core/testing';
import { type CometServer, createCometServer } from '@cometkit/server';
import { type StartedServer, startServer } from '@cometkit/test-utils';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { CometService, injectTopicMessages, provideComet } from '../src/index';

let comet: CometServer;
let started: StartedServer;
const valid = new Set<string>();
let issued = 0;
const issue = () => {
  issued += 1;
  valid.add(`t${issued}`);
  return `t${issued}`;
};
const tokenOf = (req: IncomingMessage) =>
  /^Bearer (t\d+)$/.exec(req.headers.authorization ?? '')?.[1];

let constructed = 0;
const RoomComponent = Component({
  selector: 'test-room',
  template: '@for (line of lines(); track line.id) {<span>{{ line.data }}</span>}',
})(
  class RoomComponent {
    readonly lines = injectTopicMessages<string>('room', { keep: 20 });
    constructor() {
      constructed += 1;
    }
  },
);

beforeEach(async () => {
  comet = createCometServer({
    authorize: ({ req }) =>
      valid.has(tokenOf(req) ?? '') || { code: 'unauthorized', message: 'token expired' },
  });
  started = await startServer(comet);
});

afterEach(async () => {
  TestBed.resetTestingModule();
  await started.close();
});

describe('authentication through provideComet options', () => {
  it('refreshes an expired token through the auth hook: the component stays, its subscription goes on, nothing lost', async () => {
    let token = issue();
    const auth = vi.fn(() => {
      token = issue();
      return { authorization: `Bearer ${token}` };
    });
    TestBed.configureTestingModule({
      providers: [
        provideZonelessChangeDetection(),
        provideComet({
          url: `${started.url}/api/comet`,
          transports: ['longpoll'],
          wait: 2000,
          headers: () => ({ authorization: `Bearer ${token}` }),
          auth,
        }),
      ],
    });
    const fixture = TestBed.createComponent(RoomComponent);
    const states: string[] = [];
    TestBed.inject(CometService).client.on('state', (state) => states.push(state.status));
    await vi.waitFor(() => expect(comet.stats().waiting).toBe(1));
    await comet.publish('room', 'one');
    await vi.waitFor(() => expect(fixture.nativeElement.textContent).toBe('one'));
    const statesBefore = states.length;
    valid.clear();
    await comet.publish('room', 'two');
    await vi.waitFor(() => expect(auth).toHaveBeenCalledTimes(1), { timeout: 4000 });
    await comet.publish('room', 'three');
    await vi.waitFor(() => expect(fixture.nativeElement.textContent).toBe('onetwothree'));
    expect(constructed).toBe(1);
    // The connection never left `connected` for the refresh.
    expect(states.slice(statesBefore)).toEqual([]);
  });
});
