import { afterEach, describe, expect, it } from 'vitest';
// @ts-expect-error: plain .mjs without types
import { runClient } from '../client.mjs';
// @ts-expect-error: plain .mjs without types
import { startAuthServer } from '../server.mjs';

const stops: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const stop of stops.splice(0)) await stop();
});

interface Result {
  news: number[];
  refreshes: number;
  errors: Error[];
  transport: string | undefined;
}

describe('the auth-jwt example', () => {
  for (const transport of ['websocket', 'stream', 'longpoll']) {
    it(`receives every news message over ${transport} while its short-lived token is refreshed`, async () => {
      // Tokens live 600 ms: a run of 25 messages at 100 ms outlives a few of them.
      const server = await startAuthServer({
        tokenTtlMs: 600,
        tickMs: 100,
        reauthorizeInterval: 200,
      });
      stops.push(() => server.close());
      const result = (await runClient({
        url: server.url,
        count: 25,
        transports: [transport],
      })) as Result;
      expect(result.transport).toBe(transport);
      expect(result.refreshes).toBeGreaterThan(0);
      // Consecutive: nothing lost, nothing repeated, across the refreshes.
      const first = result.news[0] as number;
      expect(result.news).toEqual(Array.from({ length: 25 }, (_, index) => first + index));
      expect(result.errors).toEqual([]);
    }, 20_000);
  }
});
