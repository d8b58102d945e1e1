import type { CometClient } from '@cometkit/core';
import { render, screen } from '@testing-library/react';
import { describe, expect, it, vi } from 'vitest';
import { CometProvider, useConnectionState, useTopic } from '../src/index';
import { withFakeComet } from './fake-comet';

let client: CometClient;
withFakeComet((test) => {
  client = test.client;
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
