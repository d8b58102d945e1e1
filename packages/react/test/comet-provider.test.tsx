import type { CometClient } from '@cometkit/core';
import { cleanup, render } from '@testing-library/react';
import { StrictMode } from 'react';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { CometProvider, useCometClient } from '../src/index';
import { COMET_URL, createTestClient } from './fake-comet';

let seen: CometClient | undefined;
function Capture() {
  seen = useCometClient();
  return null;
}

afterEach(() => {
  // Unmount first, so the hooks unsubscribe from a client that is still open.
  cleanup();
  seen?.close();
  seen = undefined;
  vi.useRealTimers();
  vi.restoreAllMocks();
});

describe('CometProvider and useCometClient', () => {
  it('throws a precise error when a hook is used outside the provider', () => {
    // React reports the thrown error on the console as well; keep the output clean.
    vi.spyOn(console, 'error').mockImplementation(() => {});
    expect(() => render(<Capture />)).toThrow(
      /useCometClient\(\) was called outside <CometProvider>/,
    );
  });

  it('gives the hooks the client it was given and never closes it', () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const client = createTestClient();
    const view = render(
      <CometProvider client={client}>
        <Capture />
      </CometProvider>,
    );
    expect(seen).toBe(client);
    view.unmount();
    vi.runAllTimers();
    expect(client.getState().status).not.toBe('closed');
  });

  it('creates a client from options and closes it on unmount', async () => {
    const view = render(
      <CometProvider options={{ url: COMET_URL, transports: ['longpoll'] }}>
        <Capture />
      </CometProvider>,
    );
    const created = seen;
    expect(created?.getState().status).toBe('idle');
    view.unmount();
    await vi.waitFor(() => expect(created?.getState().status).toBe('closed'));
  });

  it("keeps the client it created open through StrictMode's double mount", () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const view = render(
      <StrictMode>
        <CometProvider options={{ url: COMET_URL, transports: ['longpoll'] }}>
          <Capture />
        </CometProvider>
      </StrictMode>,
    );
    vi.runAllTimers();
    const created = seen;
    expect(created?.getState().status).not.toBe('closed');
    view.unmount();
    vi.runAllTimers();
    expect(created?.getState().status).toBe('closed');
  });
});
