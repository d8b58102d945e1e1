import type { CometClient } from '@cometkit/core';
import { cleanup, render, screen } from '@testing-library/react';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { CometProvider, useTopicMessages } from '../src/index';
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

function Lines(props: { keep: number }) {
  const messages = useTopicMessages('chat', { keep: props.keep });
  return (
    <ul>
      {messages.map((m) => (
        <li key={m.id}>{String(m.data)}</li>
      ))}
    </ul>
  );
}

describe('useTopicMessages', () => {
  it('keeps the last N messages, oldest first', async () => {
    render(
      <CometProvider client={client}>
        <Lines keep={2} />
      </CometProvider>,
    );
    expect(screen.queryAllByRole('listitem')).toHaveLength(0);
    await vi.waitFor(() => expect(fake.held()).toBe(1));
    fake.publish('chat', 'a');
    fake.publish('chat', 'b');
    fake.publish('chat', 'c');
    await vi.waitFor(() =>
      expect(screen.getAllByRole('listitem').map((li) => li.textContent)).toEqual(['b', 'c']),
    );
  });
});
