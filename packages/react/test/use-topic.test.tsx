import type { CometClient, MessageHandler } from '@cometkit/core';
import type { FakeBackend } from '@cometkit/test-utils';
import { render } from '@testing-library/react';
import { StrictMode } from 'react';
import { describe, expect, it, vi } from 'vitest';
import { CometProvider, type UseTopicOptions, useTopic } from '../src/index';
import { withFakeComet } from './fake-comet';

let fake: FakeBackend;
let client: CometClient;
withFakeComet((test) => {
  ({ fake, client } = test);
});

function Listener(props: {
  topic: string | readonly string[];
  handler: MessageHandler;
  options?: UseTopicOptions;
}) {
  useTopic(props.topic, props.handler, props.options);
  return null;
}

const handshakes = (topic: string) =>
  fake.polls.filter((p) => p.topics.includes(topic) && p.cursors?.[topic] === undefined).length;

describe('useTopic', () => {
  it('calls the handler with each message of the topic', async () => {
    const handler = vi.fn();
    render(
      <CometProvider client={client}>
        <Listener topic="chat" handler={handler} />
      </CometProvider>,
    );
    await vi.waitFor(() => expect(fake.held()).toHaveLength(1));
    fake.publish('chat', { text: 'hello' });
    await vi.waitFor(() => expect(handler).toHaveBeenCalledTimes(1));
    expect(handler).toHaveBeenCalledWith(
      { text: 'hello' },
      { topic: 'chat', id: '1', data: { text: 'hello' } },
    );
  });

  it('calls the latest handler without resubscribing', async () => {
    const subscribe = vi.spyOn(client, 'subscribe');
    const first = vi.fn();
    const second = vi.fn();
    const view = render(
      <CometProvider client={client}>
        <Listener topic={['chat']} handler={first} />
      </CometProvider>,
    );
    await vi.waitFor(() => expect(fake.held()).toHaveLength(1));
    // A new handler and a new (equal) topic array on this render.
    view.rerender(
      <CometProvider client={client}>
        <Listener topic={['chat']} handler={second} />
      </CometProvider>,
    );
    fake.publish('chat', 1);
    await vi.waitFor(() => expect(second).toHaveBeenCalledWith(1, expect.anything()));
    expect(first).not.toHaveBeenCalled();
    expect(subscribe).toHaveBeenCalledTimes(1);
  });

  it('follows several topics at once', async () => {
    const handler = vi.fn();
    render(
      <CometProvider client={client}>
        <Listener topic={['chat', 'typing']} handler={handler} />
      </CometProvider>,
    );
    await vi.waitFor(() => expect(fake.held()).toHaveLength(1));
    fake.publish('chat', 'a');
    fake.publish('typing', 'b');
    await vi.waitFor(() => expect(handler).toHaveBeenCalledTimes(2));
    expect(handler.mock.calls.map(([data, message]) => [message.topic, data])).toEqual([
      ['chat', 'a'],
      ['typing', 'b'],
    ]);
  });

  it("makes one held request under StrictMode's double mount", async () => {
    const handler = vi.fn();
    render(
      <StrictMode>
        <CometProvider client={client}>
          <Listener topic="chat" handler={handler} />
        </CometProvider>
      </StrictMode>,
    );
    await vi.waitFor(() => expect(fake.held()).toHaveLength(1));
    fake.publish('chat', 'once');
    await vi.waitFor(() => expect(handler).toHaveBeenCalled());
    await vi.waitFor(() => expect(fake.held()).toHaveLength(1));
    expect(handler).toHaveBeenCalledTimes(1);
    expect(handshakes('chat')).toBe(1);
    expect(fake.peakHeld()).toBe(1);
  });

  it('stops polling when the last user unmounts', async () => {
    const view = render(
      <CometProvider client={client}>
        <Listener topic="chat" handler={() => {}} />
        <Listener topic="chat" handler={() => {}} />
      </CometProvider>,
    );
    await vi.waitFor(() => expect(fake.held()).toHaveLength(1));
    view.unmount();
    await vi.waitFor(() => {
      expect(fake.held()).toHaveLength(0);
      expect(client.getState().status).toBe('idle');
    });
  });

  it('subscribes only once enabled, from the given cursor', async () => {
    fake.publish('chat', 'old');
    const handler = vi.fn();
    const view = render(
      <CometProvider client={client}>
        <Listener topic="chat" handler={handler} options={{ enabled: false }} />
      </CometProvider>,
    );
    expect(client.getState().status).toBe('idle');
    view.rerender(
      <CometProvider client={client}>
        <Listener topic="chat" handler={handler} options={{ enabled: true, cursor: '1' }} />
      </CometProvider>,
    );
    await vi.waitFor(() => expect(fake.held()).toHaveLength(1));
    expect(fake.polls[0]?.cursors).toEqual({ chat: '1' });
    fake.publish('chat', 'new');
    await vi.waitFor(() => expect(handler).toHaveBeenCalledTimes(1));
    expect(handler).toHaveBeenCalledWith('new', expect.anything());
  });
});
