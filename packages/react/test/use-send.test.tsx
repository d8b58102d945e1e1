import type { CometClient } from '@cometkit/core';
import type { FakeBackend } from '@cometkit/test-utils';
import { render } from '@testing-library/react';
import { describe, expect, it } from 'vitest';
import { CometProvider, useSend } from '../src/index';
import { withFakeComet } from './fake-comet';

let fake: FakeBackend;
let client: CometClient;
withFakeComet((test) => {
  ({ fake, client } = test);
});

type Send = ReturnType<typeof useSend>;

function Capture(props: { onSend: (send: Send) => void }) {
  props.onSend(useSend());
  return null;
}

function renderSend() {
  let send: Send | undefined;
  const capture = (given: Send) => {
    send = given;
  };
  const view = render(
    <CometProvider client={client}>
      <Capture onSend={capture} />
    </CometProvider>,
  );
  const first = send;
  view.rerender(
    <CometProvider client={client}>
      <Capture onSend={capture} />
    </CometProvider>,
  );
  if (!send) throw new Error('not rendered');
  return { send, stable: first === send };
}

describe('useSend', () => {
  it('sends through the client and resolves with the broker id, stable across renders', async () => {
    const { send, stable } = renderSend();
    expect(stable).toBe(true);
    await expect(send('chat:support', { text: 'hi' })).resolves.toBe('1');
    expect(fake.sends.map(({ topic, data }) => ({ topic, data }))).toEqual([
      { topic: 'chat:support', data: { text: 'hi' } },
    ]);
  });

  it("rejects with the server's error", async () => {
    fake.onSend(() => ({
      status: 400,
      code: 'bad_request',
      message: 'text must be 1 to 2000 characters',
    }));
    const { send } = renderSend();
    await expect(send('chat:support', { text: '' })).rejects.toMatchObject({
      status: 400,
      message: expect.stringContaining('text must be 1 to 2000 characters'),
    });
  });
});
