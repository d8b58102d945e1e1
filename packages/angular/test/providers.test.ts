import './setup-angular';
import { provideZonelessChangeDetection } from '@angular/core';
import { TestBed } from '@angular/core/testing';
import { createCometClient } from '@cometkit/core';
import type { FakeBackend } from '@cometkit/test-utils';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { COMET_CLIENT, CometService, provideComet } from '../src/index';
import { clientOptions, configure, createCometBackend } from './helpers';

let backend: FakeBackend;

beforeEach(() => {
  backend = createCometBackend();
});

afterEach(() => {
  TestBed.resetTestingModule();
  backend.close();
});

describe('provideComet', () => {
  it('makes a client from options and closes it with the application', async () => {
    configure();
    const client = TestBed.inject(COMET_CLIENT);
    const stop = TestBed.inject(CometService).client.subscribe('news', () => {});
    await vi.waitFor(() => expect(backend.held()).toHaveLength(1));
    TestBed.resetTestingModule();
    expect(client.getState()).toEqual({ status: 'closed' });
    await vi.waitFor(() => expect(backend.held()).toHaveLength(0));
    expect(backend.polls.at(-1)?.aborted).toBe(true);
    stop();
  });

  it('uses a given client and leaves it open for its owner', async () => {
    const client = createCometClient(clientOptions);
    try {
      TestBed.configureTestingModule({
        providers: [provideZonelessChangeDetection(), provideComet({ client })],
      });
      expect(TestBed.inject(COMET_CLIENT)).toBe(client);
      expect(TestBed.inject(CometService).client).toBe(client);
      TestBed.resetTestingModule();
      expect(client.getState()).toEqual({ status: 'idle' });
    } finally {
      client.close();
    }
  });

  it('gives each application its own client', () => {
    configure();
    const first = TestBed.inject(COMET_CLIENT);
    TestBed.resetTestingModule();
    configure();
    expect(TestBed.inject(COMET_CLIENT)).not.toBe(first);
  });
});
