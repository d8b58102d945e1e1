// @vitest-environment node
import type { CometClient } from '@cometkit/core';
import { renderToString } from 'react-dom/server';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  CometProvider,
  useCometClient,
  useConnectionState,
  useTopic,
  useTopicMessages,
  useTopicValue,
} from '../src/index';
import { createTestClient, type FakeComet, startFakeComet } from './msw-comet';

let fake: FakeComet;

beforeEach(() => {
  fake = startFakeComet();
});

afterEach(() => {
  fake.server.close();
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
    fake.publish('price', 3);
    const html = renderToString(
      <CometProvider client={client}>
        <Page />
      </CometProvider>,
    );
    expect(html).toBe('<p>idle<!-- -->|<!-- -->none<!-- -->|<!-- -->0</p>');
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
