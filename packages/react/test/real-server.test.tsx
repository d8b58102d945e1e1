import { type CometClient, createCometClient } from '@cometkit/core';
import { type CometServer, createCometServer } from '@cometkit/server';
import { type StartedServer, startServer } from '@cometkit/test-utils';
import { cleanup, render, screen } from '@testing-library/react';
import { StrictMode } from 'react';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { CometProvider, useConnectionState, useSend, useTopicMessages } from '../src/index';

let comet: CometServer;
let started: StartedServer;
let client: CometClient;

beforeEach(async () => {
  comet = createCometServer();
  started = await startServer(comet);
  client = createCometClient({
    url: `${started.url}/api/comet`,
    transports: ['longpoll'],
    idleGrace: 20,
  });
});

afterEach(async () => {
  cleanup();
  client.close();
  await started.close();
});

function Lines() {
  const lines = useTopicMessages('room', { keep: 10 });
  return (
    <ul>
      {lines.map((line) => (
        <li key={line.id}>{String(line.data)}</li>
      ))}
    </ul>
  );
}

function Status() {
  return <output data-testid="status">{useConnectionState().status}</output>;
}

function SendButton() {
  const send = useSend();
  return (
    <button type="button" onClick={() => void send('room', 'from the page')}>
      send
    </button>
  );
}

function History() {
  const lines = useTopicMessages('room', { rewind: 2 });
  return <p data-testid="history">{lines.map((line) => String(line.data)).join(' ')}</p>;
}

describe('against a real @cometkit/server on loopback', () => {
  it('starts with the last `rewind` messages of the topic, then live ones', async () => {
    for (const line of ['a', 'b', 'c']) await comet.publish('room', line);
    render(
      <CometProvider client={client}>
        <History />
      </CometProvider>,
    );
    await vi.waitFor(() => expect(screen.getByTestId('history').textContent).toBe('b c'));
    await vi.waitFor(() => expect(comet.stats().held).toBe(1));
    await comet.publish('room', 'd');
    await vi.waitFor(() => expect(screen.getByTestId('history').textContent).toBe('c d'));
  });

  it('holds one poll under StrictMode, delivers, sends, and stops when unmounted', async () => {
    const view = render(
      <StrictMode>
        <CometProvider client={client}>
          <Status />
          <Lines />
          <Lines />
          <SendButton />
        </CometProvider>
      </StrictMode>,
    );
    await vi.waitFor(() => expect(comet.stats().held).toBe(1));
    await comet.publish('room', 'from the server');
    expect(await screen.findAllByText('from the server')).toHaveLength(2);
    screen.getByRole('button').click();
    expect(await screen.findAllByText('from the page')).toHaveLength(2);
    await vi.waitFor(() => expect(comet.stats().held).toBe(1));
    expect(screen.getByTestId('status').textContent).toBe('connected');
    view.unmount();
    await vi.waitFor(() => {
      expect(comet.stats().held).toBe(0);
      expect(client.getState().status).toBe('idle');
    });
  });
});
