/**
 * The real `@cometkit/core` client against the real server on loopback: no mocks.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  type CometClient,
  type CometError,
  createCometClient,
  type ResetEvent,
} from '@cometkit/core';
import { createFront, type Front, type StartedServer, startServer } from '@cometkit/test-utils';
import { afterEach, describe, expect, it } from 'vitest';
import { createMemoryBroker, type MemoryBroker } from '../src/brokers/memory';
import { type CometServer, type CometServerOptions, createCometServer } from '../src/index';

const clients: CometClient[] = [];
const servers: StartedServer[] = [];
const fronts: Front[] = [];
const brokers: MemoryBroker[] = [];

afterEach(async () => {
  for (const client of clients.splice(0)) client.close();
  await Promise.all(fronts.splice(0).map((front) => front.close()));
  await Promise.all(servers.splice(0).map((server) => server.close()));
  await Promise.all(brokers.splice(0).map((broker) => broker.close()));
});

function client(url: string): CometClient {
  const made = createCometClient({
    url,
    // These are the long-poll tests (issue 3); the other transports have their own.
    transports: ['longpoll'],
    // Fast retries: a restart or a drain should not make the test wait for backoff.
    backoff: { initialDelay: 10, maxDelay: 50 },
  });
  clients.push(made);
  return made;
}

async function serve(
  options: CometServerOptions = {},
  wrap?: (comet: CometServer) => (req: IncomingMessage, res: ServerResponse) => void,
  port?: number,
): Promise<{ comet: CometServer; base: string; started: StartedServer }> {
  const comet = createCometServer(options);
  const handle = wrap ? wrap(comet) : comet.handle;
  const started = await startServer({ handle, close: () => comet.close() }, { port });
  servers.push(started);
  return { comet, base: `${started.url}/api/comet`, started };
}

describe('client and server on loopback', () => {
  it('delivers a message published while the client is between two polls', async () => {
    let publishBeforeNextPoll = false;
    const { comet, base } = await serve({}, (comet) => (req, res) => {
      if (publishBeforeNextPoll && req.url === '/api/comet') {
        // This poll is not in the server yet and the previous one was answered: between polls.
        publishBeforeNextPoll = false;
        comet.publish('news', 'between').then(() => comet.handle(req, res));
        return;
      }
      comet.handle(req, res);
    });
    const received: unknown[] = [];
    client(base).subscribe('news', (data) => received.push(data));
    await expect.poll(() => comet.stats().waiting).toBe(1);
    publishBeforeNextPoll = true;
    await comet.publish('news', 'first');
    await expect.poll(() => received).toEqual(['first', 'between']);
    expect(publishBeforeNextPoll).toBe(false);
  });

  it('delivers 5 000 messages published in bursts to each of 50 clients once, in order', async () => {
    const { comet, base } = await serve({
      broker: track(createMemoryBroker({ historySize: 10_000 })),
    });
    const received = Array.from({ length: 50 }, () => [] as number[]);
    for (const list of received)
      client(base).subscribe('burst', (data) => list.push(data as number));
    await expect.poll(() => comet.stats().waiting, { timeout: 10_000 }).toBe(50);
    for (let burst = 0; burst < 50; burst += 1) {
      await Promise.all(
        Array.from({ length: 100 }, (_, index) => comet.publish('burst', burst * 100 + index)),
      );
      await new Promise((resolve) => setImmediate(resolve));
    }
    await expect
      .poll(() => received.every((list) => list.length >= 5000), { timeout: 20_000 })
      .toBe(true);
    const expected = Array.from({ length: 5000 }, (_, index) => index);
    for (const list of received) expect(list).toEqual(expected);
  }, 25_000);

  it('gives the client a reset after a restart (new epoch), then delivers again', async () => {
    const first = await serve();
    const port = first.started.port;
    const received: unknown[] = [];
    const resets: ResetEvent[] = [];
    const comet = client(first.base);
    comet.on('reset', (event) => resets.push(event));
    comet.subscribe('room', (data) => received.push(data));
    await expect.poll(() => first.comet.stats().waiting).toBe(1);
    await first.comet.publish('room', 'before');
    await expect.poll(() => received).toEqual(['before']);
    await first.started.close();
    const second = await serve({}, undefined, port);
    await expect.poll(() => resets.length, { timeout: 10_000 }).toBe(1);
    expect(resets[0]?.topic).toBe('room');
    await expect.poll(() => second.comet.stats().waiting).toBe(1);
    await second.comet.publish('room', 'after');
    await expect.poll(() => received).toEqual(['before', 'after']);
  });

  it('keeps the other topics working when authorize refuses one', async () => {
    const { comet, base } = await serve({ authorize: ({ topic }) => topic !== 'secret' });
    const errors: CometError[] = [];
    const chat: unknown[] = [];
    const secret: unknown[] = [];
    const made = client(base);
    made.on('error', (error) => errors.push(error));
    made.subscribe('chat', (data) => chat.push(data));
    made.subscribe('secret', (data) => secret.push(data));
    await expect.poll(() => errors.length).toBe(1);
    expect(errors[0]?.message).toMatch(/secret/);
    await expect.poll(() => comet.stats().waiting).toBe(1);
    await comet.publish('secret', 'hidden');
    await comet.publish('chat', 'visible');
    await expect.poll(() => chat).toEqual(['visible']);
    expect(secret).toEqual([]);
  });

  it('loses and repeats nothing across two instances sharing a broker behind a round-robin front', async () => {
    const broker = track(createMemoryBroker());
    const one = await serve({ broker });
    const two = await serve({ broker });
    const front = await createFront({ targets: [one.started.url, two.started.url] });
    fronts.push(front);
    const received: unknown[] = [];
    const made = client(`${front.url}/api/comet`);
    made.subscribe('shared', (data) => received.push(data));
    // Subscribing starts from the position at the handshake: publish once the poll is held.
    await expect.poll(() => one.comet.stats().waiting + two.comet.stats().waiting).toBe(1);
    const sender = client(`${front.url}/api/comet`);
    const expected: number[] = [];
    for (let index = 0; index < 200; index += 1) {
      expected.push(index);
      if (index % 2 === 0) await sender.send('shared', index);
      else await (index % 4 === 1 ? one : two).comet.publish('shared', index);
      // Every few messages, let polls turn over so requests keep alternating.
      if (index % 10 === 9) await expect.poll(() => received.length).toBe(index + 1);
    }
    await expect.poll(() => received.length, { timeout: 10_000 }).toBe(200);
    expect(received).toEqual(expected);
    const counts = [...front.counts().values()];
    expect(counts).toHaveLength(2);
    for (const count of counts) expect(count).toBeGreaterThan(20);
  }, 25_000);
});

function track(broker: MemoryBroker): MemoryBroker {
  brokers.push(broker);
  return broker;
}
