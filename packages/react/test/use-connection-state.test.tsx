import type { CometClient } from '@cometkit/core';
import { cleanup, render, screen } from '@testing-library/react';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { CometProvider, useConnectionState, useTopic } from '../src/index';
import { createTestClient, type FakeComet, startFakeComet } from './msw-comet';

let fake: FakeComet;
let client: CometClient;

beforeEach(() => {
  fake = startFakeComet();
  client = createTestClient();
});

afterEach(() => {
  // Unmount first, so the hooks unsubscribe from a client that is still open.
  cleanup();
  client.close();
  fake.server.close();
});

function Status() {
  const state = useConnectionState();
  return (
    <output data-testid="status">
      {state.status === 'connected' ? `connected · ${state.transport}` : state.status}
    </output>
  );
}

function Listener() {
  useTopic('chat', () => {});
  return null;
}

describe('useConnectionState', () => {
  it('shows idle, connected while a topic is used, and idle again after', async () => {
    const app = (listening: boolean) => (
      <CometProvider client={client}>
        <Status />
        {listening && <Listener />}
      </CometProvider>
    );
    const view = render(app(false));
    expect(screen.getByTestId('status').textContent).toBe('idle');
    view.rerender(app(true));
    expect(await screen.findByText('connected · longpoll')).toBeTruthy();
    view.rerender(app(false));
    await vi.waitFor(() => expect(screen.getByTestId('status').textContent).toBe('idle'));
  });
});
