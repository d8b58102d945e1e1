/**
 * Crashes and restarts on a real Redis: a send caught by an instance that dies before or after
 * its publish, retried on another instance; a poll whose cursor is from before a Redis restart.
 */
import { randomUUID } from 'node:crypto';
import { type Broker, type CometServer, createCometServer } from '@cometkit/server';
import { type StartedServer, startServer } from '@cometkit/test-utils';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createRedisBroker, type RedisBroker } from '../src/index';
import { redisAvailable, startRedis, type TestRedis } from './redis-server';

interface Answer {
  status: number;
  body: {
    messageId?: string;
    messages?: Array<{ topic: string; id: string; data: unknown }>;
    cursors?: Record<string, string>;
    resets?: string[];
    error?: { code: string };
  };
}

async function post(url: string, body: unknown, signal?: AbortSignal): Promise<Answer> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
    signal,
  });
  return { status: response.status, body: (await response.json()) as Answer['body'] };
}

/** Retries `attempt` until it resolves: at most 200 tries, 50 ms apart (10 s). */
async function eventually<T>(attempt: () => Promise<T>): Promise<T> {
  let lastError: unknown;
  for (let tries = 0; tries < 200; tries += 1) {
    try {
      return await attempt();
    } catch (error) {
      lastError = error;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  throw lastError;
}

describe.skipIf(!redisAvailable)('crashes and restarts on Redis', () => {
  let redis: TestRedis;
  let keyPrefix: string;
  const cleanup: Array<() => Promise<unknown> | unknown> = [];

  beforeAll(async () => {
    redis = await startRedis();
  });
  beforeEach(() => {
    keyPrefix = `c${randomUUID()}:`;
  });
  afterEach(async () => {
    for (const step of cleanup.splice(0).reverse()) await step();
  });
  afterAll(async () => {
    await redis?.close();
  });

  function broker(): RedisBroker {
    const made = createRedisBroker({ redis: redis.url, keyPrefix });
    cleanup.push(() => made.close());
    return made;
  }

  async function instance(
    over: Broker,
  ): Promise<{ comet: CometServer; started: StartedServer; url: string }> {
    const comet = createCometServer({ broker: over, maxWait: 1000 });
    const started = await startServer(comet);
    return { comet, started, url: `${started.url}/api/comet` };
  }

  /**
   * An instance whose publish never answers, after (or without) reaching Redis: the process
   * "dies" there. `kill()` drops its connections as a SIGKILL would; its work never resumes.
   */
  async function dyingInstance(publishFirst: boolean) {
    const real = broker();
    let reached: (id: string | undefined) => void = () => {};
    const publishReached = new Promise<string | undefined>((resolve) => {
      reached = resolve;
    });
    const dying: Broker = {
      ...real,
      publish: async (topic, data, options) => {
        const id = publishFirst ? await real.publish(topic, data, options) : undefined;
        reached(id);
        return new Promise<string>(() => {});
      },
    };
    const { started, url } = await instance(dying);
    const kill = () => {
      started.server.closeAllConnections();
      started.server.close();
    };
    cleanup.push(kill);
    return { url, publishReached, kill };
  }

  const sendBody = { v: 1, sessionGuid: 'g-1', id: 'send-1', data: 'hi' };

  it.each([
    ['after its publish', true],
    ['before its publish', false],
  ])(
    'publishes a send once when its instance dies %s, answering the retry on another instance',
    async (_, publishFirst) => {
      const dying = await dyingInstance(publishFirst);
      const other = await instance(broker());
      const controller = new AbortController();
      const first = post(`${dying.url}/chat`, sendBody, controller.signal).catch(
        (error: unknown) => error,
      );
      const publishedId = await dying.publishReached;
      dying.kill();
      expect(await first).toBeInstanceOf(Error);

      // The client's retry, same id, lands on the other instance: answered at once (no pending
      // reservation to wait out), with the one message there is.
      const retry = await post(`${other.url}/chat`, sendBody);
      expect(retry.status).toBe(200);
      const history = await other.comet.recent('chat', 10);
      expect(history.messages.map((message) => message.data)).toEqual(['hi']);
      expect(retry.body.messageId).toBe(history.messages[0]?.id);
      if (publishedId !== undefined) expect(retry.body.messageId).toBe(publishedId);
      // And again: still that one message.
      expect((await post(`${other.url}/chat`, sendBody)).body).toEqual(retry.body);
      expect((await other.comet.recent('chat', 10)).messages).toHaveLength(1);
    },
  );

  it('gives a cursor from before a Redis restart a reset, then every message published since', async () => {
    const { comet, url } = await instance(broker());
    const poll = (cursors: Record<string, string>, wait = 0) =>
      post(url, { v: 1, sessionGuid: 'g-1', topics: ['t'], cursors, wait });
    const handshake = await poll({});
    await comet.publish('t', 'before');
    const before = await poll(handshake.body.cursors ?? {});
    expect(before.body.messages?.map((message) => message.data)).toEqual(['before']);

    await redis.restart();
    // Published after Redis came back, before this client's next poll (it was backing off).
    const since = [await eventually(() => comet.publish('t', 'since 1'))];
    for (const data of ['since 2', 'since 3']) since.push(await comet.publish('t', data));

    const reset = await eventually(async () => {
      const answer = await poll(before.body.cursors ?? {});
      if (answer.status !== 200) throw new Error(`status ${answer.status}`);
      return answer;
    });
    expect(reset.body.resets).toEqual(['t']);
    expect(reset.body.messages).toBeUndefined();
    const resumed = await poll(reset.body.cursors ?? {});
    expect(resumed.body.messages?.map((message) => message.id)).toEqual(since);
  });
});
