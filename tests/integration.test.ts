import { type CometClient, type CometMessage, createCometClient } from '@cometkit/core';
import { type CometServer, createCometServer } from '@cometkit/server';
import { type StartedServer, startServer } from '@cometkit/test-utils';
import { afterEach, describe, expect, it, vi } from 'vitest';

let comet: CometServer | undefined;
let http: StartedServer | undefined;
const clients: CometClient[] = [];

afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await http?.close();
  http = undefined;
  comet = undefined;
});

async function start() {
  comet = createCometServer();
  http = await startServer(comet);
  const client = createCometClient({ url: `${http.url}/api/comet`, wait: 2000 });
  clients.push(client);
  return client;
}

describe('the client against a real @cometkit/server on loopback', () => {
  it('receives what another client sends, in order, with ids and nothing repeated', async () => {
    const reader = await start();
    const writer = createCometClient({ url: `${http?.url}/api/comet` });
    clients.push(writer);
    const got: CometMessage[] = [];
    reader.subscribe('chat', (_data, message) => got.push(message));
    await vi.waitFor(() => expect(reader.getState().status).toBe('connected'));
    const ids = [];
    for (const text of ['one', 'two', 'three']) ids.push(await writer.send('chat', { text }));
    await vi.waitFor(() => expect(got).toHaveLength(3));
    expect(got.map((m) => m.data)).toEqual([{ text: 'one' }, { text: 'two' }, { text: 'three' }]);
    expect(got.map((m) => m.id)).toEqual(ids);
  });

  it('continues from a cursor given at subscribe', async () => {
    const client = await start();
    const first = await comet?.publish('news', 'old');
    await comet?.publish('news', 'new');
    const got: unknown[] = [];
    client.subscribe('news', (data) => got.push(data), { cursor: first });
    await vi.waitFor(() => expect(got).toEqual(['new']));
  });
});
