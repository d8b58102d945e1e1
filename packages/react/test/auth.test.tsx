import type { IncomingMessage } from 'node:http';
import { type CometServer, createCometServer } from '@cometkit/server';
import { type StartedServer, startServer } from '@cometkit/test-utils';
import { cleanup, render, screen } from '@testing-library/react';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { CometProvider, useConnectionState, useTopicMessages } from '../src/index';

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

beforeEach(async () => {
  comet = createCometServer({
    authorize: ({ req }) =>
      valid.has(tokenOf(req) ?? '') || { code: 'unauthorized', message: 'token expired' },
  });
  started = await startServer(comet);
});

afterEach(async () => {
  cleanup();
  await started.close();
});

const renders = { app: 0, lines: 0 };
const states: string[] = [];

function Lines() {
  renders.lines += 1;
  const lines = useTopicMessages('room', { keep: 20 });
  return (
    <ul>
      {lines.map((line) => (
        <li key={line.id}>{String(line.data)}</li>
      ))}
    </ul>
  );
}

function Status() {
  const status = useConnectionState().status;
  states.push(status);
  return <output data-testid="status">{status}</output>;
}

function App() {
  renders.app += 1;
  return (
    <>
      <Status />
      <Lines />
    </>
  );
}

describe('authentication through <CometProvider options>', () => {
  it('refreshes an expired token through the auth hook without re-rendering the tree or restarting the subscription', async () => {
    let token = issue();
    const auth = vi.fn(() => {
      token = issue();
      return { authorization: `Bearer ${token}` };
    });
    render(
      <CometProvider
        options={{
          url: `${started.url}/api/comet`,
          transports: ['longpoll'],
          wait: 2000,
          headers: () => ({ authorization: `Bearer ${token}` }),
          auth,
        }}
      >
        <App />
      </CometProvider>,
    );
    await vi.waitFor(() => expect(comet.stats().waiting).toBe(1));
    await comet.publish('room', 'one');
    await screen.findByText('one');
    const linesBefore = renders.lines;
    // The token expires: the next poll is refused, the hook refreshes it, the poll goes again.
    valid.clear();
    await comet.publish('room', 'two');
    await screen.findByText('two');
    await vi.waitFor(() => expect(auth).toHaveBeenCalledTimes(1));
    await comet.publish('room', 'three');
    await screen.findByText('three');
    expect(screen.getAllByRole('listitem').map((item) => item.textContent)).toEqual([
      'one',
      'two',
      'three',
    ]);
    expect(renders.app).toBe(1);
    // One render per message, nothing for the refresh.
    expect(renders.lines - linesBefore).toBe(2);
    expect(states.filter((status) => status !== 'connected')).toEqual(['idle', 'connecting']);
  });
});
