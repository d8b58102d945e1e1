import type { CometClient } from '@cometkit/core';
import type { FakeBackend } from '@cometkit/test-utils';
import { render, screen } from '@testing-library/react';
import { describe, expect, it, vi } from 'vitest';
import { CometProvider, usePresence } from '../src/index';
import { withFakeComet } from './fake-comet';

let fake: FakeBackend;
let client: CometClient;
withFakeComet((test) => {
  ({ fake, client } = test);
});

function Online(props: { id: string }) {
  const members = usePresence('room');
  return (
    <output data-testid={props.id}>{members.map((m) => m.userId).join(',') || 'nobody'}</output>
  );
}

describe('usePresence', () => {
  it('renders the members of the sync, then each join and leave', async () => {
    render(
      <CometProvider client={client}>
        <Online id="a" />
      </CometProvider>,
    );
    expect(screen.getByTestId('a').textContent).toBe('nobody');
    await vi.waitFor(() => expect(fake.held()).toHaveLength(1));
    expect(fake.polls.at(-1)?.body.topics).toEqual(['room@presence']);
    fake.publish('room@presence', { event: 'sync', members: [{ id: 'a', userId: 'ann' }] });
    await vi.waitFor(() => expect(screen.getByTestId('a').textContent).toBe('ann'));
    fake.publish('room@presence', { event: 'join', member: { id: 'b', userId: 'bob' } });
    await vi.waitFor(() => expect(screen.getByTestId('a').textContent).toBe('ann,bob'));
    fake.publish('room@presence', { event: 'leave', member: { id: 'a', userId: 'ann' } });
    await vi.waitFor(() => expect(screen.getByTestId('a').textContent).toBe('bob'));
  });

  it('shares one core subscription between two components', async () => {
    render(
      <CometProvider client={client}>
        <Online id="a" />
        <Online id="b" />
      </CometProvider>,
    );
    await vi.waitFor(() => expect(fake.held()).toHaveLength(1));
    fake.publish('room@presence', { event: 'sync', members: [{ id: 'a', userId: 'ann' }] });
    await vi.waitFor(() => expect(screen.getByTestId('b').textContent).toBe('ann'));
    expect(screen.getByTestId('a').textContent).toBe('ann');
    expect(fake.held()).toHaveLength(1);
  });
});
