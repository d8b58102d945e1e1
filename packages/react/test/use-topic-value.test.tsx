import type { CometClient, TopicStore } from '@cometkit/core';
import type { FakeBackend } from '@cometkit/test-utils';
import { render, screen } from '@testing-library/react';
import { describe, expect, it, vi } from 'vitest';
import { CometProvider, useTopic, useTopicValue } from '../src/index';
import { withFakeComet } from './fake-comet';

let fake: FakeBackend;
let client: CometClient;
withFakeComet((test) => {
  ({ fake, client } = test);
});

function Price(props: { id: string; onRender?: () => void }) {
  props.onRender?.();
  const price = useTopicValue('price');
  return <output data-testid={props.id}>{price === undefined ? 'none' : String(price)}</output>;
}

/** A sibling that sees every message, so a test knows when one was processed. */
function Witness(props: { onMessage: (data: unknown) => void }) {
  useTopic('price', props.onMessage);
  return null;
}

describe('useTopicValue', () => {
  it('is undefined until a message arrives, then the newest data', async () => {
    render(
      <CometProvider client={client}>
        <Price id="a" />
      </CometProvider>,
    );
    expect(screen.getByTestId('a').textContent).toBe('none');
    await vi.waitFor(() => expect(fake.held()).toHaveLength(1));
    fake.publish('price', 10);
    fake.publish('price', 11);
    await vi.waitFor(() => expect(screen.getByTestId('a').textContent).toBe('11'));
  });

  it('shares one core subscription between two components on one topic', async () => {
    const subscribe = vi.spyOn(client, 'subscribe');
    const stores = new Set<TopicStore>();
    const topicStore = client.topicStore.bind(client);
    vi.spyOn(client, 'topicStore').mockImplementation((topic, options) => {
      const store = topicStore(topic, options);
      stores.add(store);
      return store;
    });
    render(
      <CometProvider client={client}>
        <Price id="a" />
        <Price id="b" />
      </CometProvider>,
    );
    await vi.waitFor(() => expect(fake.held()).toHaveLength(1));
    fake.publish('price', 7);
    expect(await screen.findByText('7', { selector: '[data-testid="a"]' })).toBeTruthy();
    expect(screen.getByTestId('b').textContent).toBe('7');
    expect(stores.size).toBe(1);
    // Exactly one core subscription for the topic, from the shared store, while both are mounted.
    const onPrice = subscribe.mock.calls.filter(([topic]) => [topic].flat().includes('price'));
    expect(onPrice).toHaveLength(1);
    // Each poll names the topic once.
    for (const poll of fake.polls) expect(poll.topics).toEqual(['price']);
    expect(fake.peakHeld()).toBe(1);
    expect(fake.polls.filter((p) => p.cursors?.price === undefined)).toHaveLength(1);
  });

  it('re-renders only when the value changes', async () => {
    let renders = 0;
    const delivered: unknown[] = [];
    render(
      <CometProvider client={client}>
        <Price id="a" onRender={() => renders++} />
        <Witness onMessage={(data) => delivered.push(data)} />
      </CometProvider>,
    );
    await vi.waitFor(() => expect(fake.held()).toHaveLength(1));
    expect(renders).toBe(1);
    fake.publish('price', 5);
    await vi.waitFor(() => expect(screen.getByTestId('a').textContent).toBe('5'));
    expect(renders).toBe(2);
    fake.publish('price', 5);
    await vi.waitFor(() => expect(delivered).toEqual([5, 5]));
    expect(renders).toBe(2);
    fake.publish('price', 6);
    await vi.waitFor(() => expect(screen.getByTestId('a').textContent).toBe('6'));
    expect(renders).toBe(3);
  });
});
