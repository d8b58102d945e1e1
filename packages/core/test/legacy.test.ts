import { type LegacyServer, startLegacyServer } from '@cometkit/test-utils';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createCometClient } from '../src/client';
import type { CometClient, CometMessage } from '../src/types';

let server: LegacyServer | undefined;
let client: CometClient | undefined;

afterEach(async () => {
  client?.close();
  await server?.close();
  client = undefined;
  server = undefined;
});

describe('against a server written the way the original design describes it', () => {
  it('delivers legacy messages without ids and polls again after {"reconnect": true}', async () => {
    server = await startLegacyServer({ hold: 300 });
    const legacy = server;
    client = createCometClient({ url: legacy.url, userId: 'ann', transports: ['longpoll'] });
    const got: CometMessage[] = [];
    client.subscribe('chat', (_data, message) => got.push(message));
    await vi.waitFor(() => expect(legacy.requests.length).toBeGreaterThanOrEqual(1));
    expect(legacy.requests[0]).toEqual({
      topics: ['chat'],
      sessionGuid: client.sessionGuid,
      userId: 'ann',
    });
    legacy.publish('chat', { text: 'one' });
    legacy.publish('chat', { text: 'two' });
    legacy.publish('other', { text: 'not for us' });
    await vi.waitFor(() => expect(got).toHaveLength(2));
    expect(got).toEqual([
      { topic: 'chat', id: undefined, data: { text: 'one' } },
      { topic: 'chat', id: undefined, data: { text: 'two' } },
    ]);
    // The hold ends with {"reconnect": true}: the client is still connected and polls on.
    const before = legacy.requests.length;
    await vi.waitFor(() => expect(legacy.requests.length).toBeGreaterThan(before + 1));
    expect(client.getState()).toEqual({ status: 'connected', transport: 'longpoll' });
    legacy.publish('chat', 'three');
    await vi.waitFor(() => expect(got.map((m) => m.data)).toContain('three'));
  });
});
