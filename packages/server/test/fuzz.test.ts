/**
 * Property-based fuzzing (fast-check, seeded) of everything the server takes from the network:
 * HTTP bodies on the poll, stream and send routes, and WebSocket frames, against a real server
 * on loopback. Whatever arrives: no crash, never a 5xx, a 4xx with an error body for bad input,
 * nothing left behind (holds, listeners, sockets, heap), and an honest client still served.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import type { MemoryBroker } from '../src/index';
import { poll, post, serve, stopAll } from './helpers';

afterEach(stopAll);

const SEED = 1_302_026;

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const heap = () => {
  gc();
  return process.memoryUsage().heapUsed;
};

/** JSON values with a bias towards what the server looks at. */
const topic = fc.oneof(
  fc.constantFrom('chat', 'a', 'b/c', '_stream', '', 'x'.repeat(201), 'é', '../x'),
  fc.string({ maxLength: 30 }),
);
const field = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }),
  topic,
  fc.integer(),
  fc.constant(null),
  fc.array(topic, { maxLength: 5 }),
  fc.dictionary(topic, fc.oneof(fc.string({ maxLength: 10 }), fc.integer()), { maxKeys: 4 }),
);
const deep = fc
  .integer({ min: 1, max: 3000 })
  .map((depth) => `${'['.repeat(depth)}${']'.repeat(depth)}`);
const requestBody = fc.oneof(
  fc
    .record(
      {
        v: fc.oneof(fc.constant(1), field),
        sessionGuid: fc.oneof(fc.constant('s-1'), field),
        userId: field,
        topics: fc.oneof(fc.array(topic, { maxLength: 4 }), field),
        cursors: field,
        wait: fc.oneof(fc.integer({ min: -5, max: 50 }), field),
        id: fc.oneof(fc.uuid(), field),
        data: field,
      },
      { requiredKeys: [] },
    )
    .map((body) => JSON.stringify(body)),
  fc.jsonValue({ maxDepth: 4 }).map((value) => JSON.stringify(value) ?? 'null'),
  fc.string({ maxLength: 200 }),
  deep,
  deep.map((nested) => `{"v":1,"sessionGuid":"s","id":"i","data":${nested}}`),
);

describe('fuzzing what the network sends', () => {
  it('answers any HTTP body with 200 or a 4xx error body, never a 5xx, and leaves nothing behind', async () => {
    const { base, comet } = await serve({ maxWait: 0 });
    const broker = comet.broker as MemoryBroker;
    const route = fc.constantFrom('', '/_stream', '/chat', '/a%2Fb', '/_x', '/%E0%A4%A');
    const before = heap();
    await fc.assert(
      fc.asyncProperty(route, requestBody, async (path, body) => {
        const controller = new AbortController();
        const response = await fetch(`${base}${path}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body,
          signal: controller.signal,
        });
        expect(response.status).toBeLessThan(500);
        if (response.status === 200 && path === '/_stream') {
          controller.abort();
          return;
        }
        const answer = (await response.json()) as { error?: { code: unknown } };
        if (response.status >= 400) expect(typeof answer.error?.code).toBe('string');
      }),
      { seed: SEED, numRuns: 2500, interruptAfterTimeLimit: 20_000 },
    );
    await expect.poll(() => comet.stats()).toMatchObject({ held: 0, inFlight: 0, streams: 0 });
    expect(broker.listenerCount()).toBe(0);
    // The honest client.
    const { cursors } = (await post(base, poll(['honest']))).body;
    await comet.publish('honest', 'hi');
    const answer = await post(base, poll(['honest'], cursors));
    expect(answer.body.messages?.map((message) => message.data)).toEqual(['hi']);
    expect(heap()).toBeLessThan(before + 32 * 1_048_576);
  }, 60_000);

  it('takes any WebSocket frame without crashing, closing only with 1008 or 1009', async () => {
    const { base, comet } = await serve({ maxWait: 0 });
    const wsUrl = `${base.replace('http', 'ws')}/_ws`;
    const frame = fc.oneof(
      fc
        .record(
          {
            type: fc.oneof(fc.constantFrom('poll', 'send', 'ping'), field),
            v: fc.oneof(fc.constant(1), field),
            sessionGuid: fc.oneof(fc.constant('s-1'), field),
            topics: fc.oneof(fc.array(topic, { maxLength: 4 }), field),
            cursors: field,
            topic,
            id: fc.oneof(fc.uuid(), field),
            data: field,
            headers: field,
          },
          { requiredKeys: [] },
        )
        .map((value) => JSON.stringify(value)),
      fc.string({ maxLength: 100 }),
      deep,
      deep.map((nested) => `{"type":"send","topic":"chat","id":"i","data":${nested}}`),
    );
    const codes = new Set<number>();
    const before = heap();
    await fc.assert(
      fc.asyncProperty(fc.array(frame, { minLength: 1, maxLength: 30 }), async (frames) => {
        const ws = new WebSocket(wsUrl);
        const closed = new Promise<number>((resolve) => ws.on('close', (code) => resolve(code)));
        ws.on('message', () => {});
        ws.on('error', () => {});
        await new Promise((resolve) => ws.once('open', resolve));
        for (const text of frames) ws.send(text);
        // A ping answered means every frame before it was taken.
        ws.send('{"type":"ping"}');
        const settled = await Promise.race([
          closed,
          new Promise<'pong'>((resolve) =>
            ws.on('message', (data) => {
              if (String(data) === '{"type":"pong"}') resolve('pong');
            }),
          ),
        ]);
        if (settled !== 'pong') codes.add(settled);
        ws.terminate();
      }),
      { seed: SEED, numRuns: 400, interruptAfterTimeLimit: 20_000 },
    );
    for (const code of codes) expect([1008, 1009]).toContain(code);
    await expect.poll(() => comet.stats()).toMatchObject({ sockets: 0, held: 0 });
    const { cursors } = (await post(base, poll(['honest']))).body;
    await comet.publish('honest', 'still here');
    const answer = await post(base, poll(['honest'], cursors));
    expect(answer.body.messages?.map((message) => message.data)).toEqual(['still here']);
    expect(heap()).toBeLessThan(before + 32 * 1_048_576);
  }, 60_000);
});
