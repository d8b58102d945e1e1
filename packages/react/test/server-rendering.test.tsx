// @vitest-environment node
import type { CometClient } from '@cometkit/core';
import type { FakeBackend } from '@cometkit/test-utils';
import { renderToString } from 'react-dom/server';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  CometProvider,
  useCometClient,
  useConnectionState,
  useTopic,
  useTopicMessages,
  useTopicValue,
} from '../src/index';
import { createTestClient, startFakeComet } from './fake-comet';

let fake: FakeBackend;

beforeEach(() => {
  fake = startFakeComet();
});

afterEach(() => {
  fake.close();
});

function Page() {
  const state = useConnectionState();
  const price = useTopicValue('price');
  const lines = useTopicMessages('chat', { keep: 10 });
  useTopic('chat', () => {});
  return (
    <p>
      {state.status}|{price === undefined ? 'none' : String(price)}|{lines.length}
    </p>
  );
}

function Capture(props: { onClient: (client: CometClient) => void }) {
  props.onClient(useCometClient());
  return null;
}

describe('server rendering', () => {
  it('renders the idle state and starts no request', async () => {
    const client = createTestClient();
    const subscribe = vi.spyOn(client, 'subscribe');
    // Every store the hooks get, with its subscribe spied on.
    const storeSubscribes: ReturnType<typeof vi.fn>[] = [];
    const topicStore = client.topicStore.bind(client);
    vi.spyOn(client, 'topicStore').mockImplementation((topic, options) => {
      const store = topicStore(topic, options);
      storeSubscribes.push(vi.spyOn(store, 'subscribe') as unknown as ReturnType<typeof vi.fn>);
      return store;
    });
    fake.publish('price', 3);
    const html = renderToString(
      <CometProvider client={client}>
        <Page />
      </CometProvider>,
    );
    expect(html).toBe('<p>idle<!-- -->|<!-- -->none<!-- -->|<!-- -->0</p>');
    // The core applies subscriptions in a microtask and then connects at once (the state turns
    // `connecting` before any request is made): one macrotask later it would have.
    await new Promise((resolve) => setTimeout(resolve, 0));
    expect(storeSubscribes.length).toBeGreaterThan(0);
    for (const spy of storeSubscribes) expect(spy).not.toHaveBeenCalled();
    expect(subscribe).not.toHaveBeenCalled();
    expect(client.getState().status).toBe('idle');
    expect(fake.polls).toHaveLength(0);
    client.close();
  });

  it('renders with a provider that creates its client from options', () => {
    let created: CometClient | undefined;
    renderToString(
      <CometProvider options={{ url: 'http://comet.test/api/comet' }}>
        <Capture onClient={(client) => (created = client)} />
        <Page />
      </CometProvider>,
    );
    expect(created?.getState().status).toBe('idle');
    created?.close();
  });
});
