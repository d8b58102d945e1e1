import {
  createFront,
  type Front,
  type LegacyServer,
  startLegacyServer,
} from '@cometkit/test-utils';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createCometClient } from '../src/client';
import type { CometClient, CometMessage } from '../src/types';

let server: LegacyServer | undefined;
let client: CometClient | undefined;
let front: Front | undefined;

afterEach(async () => {
  client?.close();
  await front?.close();
  await server?.close();
  client = undefined;
  server = undefined;
  front = undefined;
});

/** A repeatable random source (mulberry32). */
function seeded(seed: number) {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

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

  it('resolves a send answered {"ok": true} and never sends it again', async () => {
    server = await startLegacyServer({ hold: 300 });
    client = createCometClient({
      url: server.url,
      transports: ['longpoll'],
      backoff: { initialDelay: 10, maxDelay: 50 },
    });
    await expect(client.send('chat', { text: 'hi' })).resolves.toBeUndefined();
    // Long enough for several retries of a send taken for lost.
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(server.sends).toHaveLength(1);
    expect(server.sends[0]).toMatchObject({ topic: 'chat', body: { data: { text: 'hi' } } });
  });

  it('publishes each send exactly once through a front that answers 408 to half the requests', async () => {
    server = await startLegacyServer({ hold: 300 });
    front = await createFront({
      targets: [new URL(server.url).origin],
      faults: { rate: 0.5, kinds: ['timeout'], random: seeded(16) },
    });
    client = createCometClient({
      url: `${front.url}/api/comet`,
      transports: ['longpoll'],
      backoff: { initialDelay: 10, maxDelay: 50 },
    });
    const texts = Array.from({ length: 12 }, (_, i) => `line ${i}`);
    const results = await Promise.all(texts.map((text) => client?.send('chat', text)));
    expect(results).toEqual(texts.map(() => undefined));
    expect(front.faults().get('timeout')).toBeGreaterThan(0);
    await new Promise((resolve) => setTimeout(resolve, 200));
    // In order, each once: a 408 from the front never reached the server, a 200 is not repeated.
    expect(server.sends.map((send) => send.body.data)).toEqual(texts);
    expect(new Set(server.sends.map((send) => send.body.id)).size).toBe(texts.length);
  });
});
