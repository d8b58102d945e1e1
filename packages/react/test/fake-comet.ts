/**
 * The React tests' setup: the shared fake backend of @cometkit/test-utils (long-poll, holds of at
 * most 5 s) and a real core client pointed at it, fresh for every test.
 */
import { type CometClient, createCometClient, type TopicMap } from '@cometkit/core';
import { createFakeBackend, type FakeBackend } from '@cometkit/test-utils';
import { cleanup } from '@testing-library/react';
import { afterEach, beforeEach } from 'vitest';

/** Absolute, because Node's fetch has no page location to resolve `/api/comet` against. */
export const COMET_URL = 'http://comet.test/api/comet';

/** Starts the fake backend; close it with `close()` after the test. */
export function startFakeComet(): FakeBackend {
  return createFakeBackend({ url: COMET_URL, maxHold: 5_000 });
}

/** A real core client pointed at the fake, long-poll only, with a short idle grace. */
export function createTestClient<Topics extends TopicMap = TopicMap>(): CometClient<Topics> {
  return createCometClient<Topics>({ url: COMET_URL, transports: ['longpoll'], idleGrace: 20 });
}

/** What {@link withFakeComet} hands each test. */
export interface FakeCometTest {
  fake: FakeBackend;
  client: CometClient;
}

/**
 * Before each test of the file, starts a fake backend and a client and hands both to `use`;
 * after it, unmounts what was rendered (so hooks unsubscribe from a client that is still open),
 * then closes the client and the backend.
 */
export function withFakeComet(use: (test: FakeCometTest) => void): void {
  let started: FakeCometTest | undefined;
  beforeEach(() => {
    started = { fake: startFakeComet(), client: createTestClient() };
    use(started);
  });
  afterEach(() => {
    cleanup();
    started?.client.close();
    started?.fake.close();
    started = undefined;
  });
}
