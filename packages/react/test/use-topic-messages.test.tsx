import type { CometClient } from '@cometkit/core';
import type { FakeBackend } from '@cometkit/test-utils';
import { render, screen } from '@testing-library/react';
import { describe, expect, it, vi } from 'vitest';
import { CometProvider, useTopicMessages } from '../src/index';
import { withFakeComet } from './fake-comet';

let fake: FakeBackend;
let client: CometClient;
withFakeComet((test) => {
  ({ fake, client } = test);
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
    await vi.waitFor(() => expect(fake.held()).toHaveLength(1));
    fake.publish('chat', 'a');
    fake.publish('chat', 'b');
    fake.publish('chat', 'c');
    await vi.waitFor(() =>
      expect(screen.getAllByRole('listitem').map((li) => li.textContent)).toEqual(['b', 'c']),
    );
  });
});
