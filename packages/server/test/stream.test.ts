import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { PollAnswer } from '@cometkit/core/protocol';
import { createFront, type Front } from '@cometkit/test-utils';
import { afterEach, describe, expect, it } from 'vitest';
import { createCometServer, type MemoryBroker } from '../src/index';
import { poll, post, serve, stopAll } from './helpers';

/** One Server-Sent Event block as read off the wire. */
interface SseBlock {
  /** The event name, or undefined for a comment block. */
  event: string | undefined;
  data: PollAnswer | undefined;
  comment: string | undefined;
}

interface OpenStream {
  response: Response;
  /** The next block, or undefined once the stream ended. */
  next(): Promise<SseBlock | undefined>;
  /** The next event, skipping heartbeat comments. */
  nextEvent(): Promise<SseBlock | undefined>;
  abort(): void;
}

const streams: OpenStream[] = [];
const fronts: Front[] = [];
afterEach(async () => {
  for (const stream of streams.splice(0)) stream.abort();
  await Promise.all(fronts.splice(0).map((front) => front.close()));
  await stopAll();
});

/** Parses one block strictly: at most one `event:` and exactly one `data:` line per event. */
function parseBlock(text: string): SseBlock {
  const lines = text.split('\n');
  if (lines.every((line) => line.startsWith(':'))) {
    return { event: undefined, data: undefined, comment: lines.join('\n').slice(1).trim() };
  }
  const events = lines.filter((line) => line.startsWith('event: '));
  const data = lines.filter((line) => line.startsWith('data: '));
  if (events.length !== 1 || data.length !== 1 || lines.length !== 2) {
    throw new Error(`not one event with one data line: ${JSON.stringify(text)}`);
  }
  return {
    event: (events[0] as string).slice('event: '.length),
    data: JSON.parse((data[0] as string).slice('data: '.length)) as PollAnswer,
    comment: undefined,
  };
}

/** POSTs to `{base}/_stream` and reads the answer's body as SSE blocks. */
async function openStream(url: string, body: unknown): Promise<OpenStream> {
  const controller = new AbortController();
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
    signal: controller.signal,
  });
  const reader = response.body?.getReader();
  if (!reader) throw new Error('no body');
  const decoder = new TextDecoder();
  let buffer = '';
  let ended = false;
  const next = async (): Promise<SseBlock | undefined> => {
    for (;;) {
      const end = buffer.indexOf('\n\n');
      if (end !== -1) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        return parseBlock(block);
      }
      if (ended) {
        if (buffer.length > 0) throw new Error(`stream ended inside a block: ${buffer}`);
        return undefined;
      }
      const chunk = await reader.read();
      if (chunk.done) ended = true;
      else buffer += decoder.decode(chunk.value, { stream: true });
    }
  };
  const stream: OpenStream = {
    response,
    next,
    async nextEvent() {
      for (;;) {
        const block = await next();
        if (block === undefined || block.event !== undefined) return block;
      }
    },
    abort: () => controller.abort(),
  };
  streams.push(stream);
  return stream;
}

async function streamServer(options: Parameters<typeof serve>[0] = {}) {
  const served = await serve(options);
  // The server's own memory broker: it counts listeners.
  const broker = served.comet.broker as MemoryBroker;
  return { ...served, broker, url: `${served.base}/_stream` };
}

describe('streaming handler', () => {
  it('after a reset in open, sends the messages from the resumed position without waiting for a publish', async () => {
    const { comet, url } = await streamServer();
    const ids = [await comet.publish('chat', 'a'), await comet.publish('chat', 'b')];
    const stream = await openStream(url, poll(['chat'], { chat: 'oldepoch-7' }));
    const open = await stream.nextEvent();
    expect(open?.event).toBe('open');
    expect(open?.data?.resets).toEqual(['chat']);
    // Bounded: a stream that waits for the next publish instead fails here, not at the timeout.
    const next = await Promise.race([
      stream.nextEvent(),
      new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), 2000)),
    ]);
    expect(next?.event).toBe('messages');
    expect(next?.data?.messages?.map((message) => message.id)).toEqual(ids);
  });

  it('opens without the position of a rewound topic, then sends its last messages and goes on live', async () => {
    const { comet, url } = await streamServer();
    const ids: string[] = [];
    for (let i = 0; i < 5; i += 1) ids.push(await comet.publish('chat', i));
    const stream = await openStream(url, {
      ...poll(['chat', 'typing']),
      rewind: { chat: { count: 2 } },
    });
    const open = await stream.nextEvent();
    expect(open?.event).toBe('open');
    expect(Object.keys(open?.data?.cursors ?? {})).toEqual(['typing']);
    const rewound = await stream.nextEvent();
    expect(rewound?.data?.messages?.map((m) => m.id)).toEqual(ids.slice(3));
    expect(rewound?.data?.cursors?.chat).toBe(ids[4]);
    const live = await comet.publish('chat', 5);
    expect((await stream.nextEvent())?.data?.messages?.map((m) => m.id)).toEqual([live]);
  });

  it('opens at once with the no-buffering headers and the position of every topic', async () => {
    const { comet, url } = await streamServer();
    await comet.publish('chat', 'before');
    const stream = await openStream(url, poll(['chat', 'typing']));
    expect(stream.response.status).toBe(200);
    expect(stream.response.headers.get('content-type')).toMatch(/^text\/event-stream/);
    expect(stream.response.headers.get('cache-control')).toBe('no-cache, no-transform');
    expect(stream.response.headers.get('x-accel-buffering')).toBe('no');
    const open = await stream.next();
    expect(open?.event).toBe('open');
    expect(Object.keys(open?.data?.cursors ?? {})).toEqual(['chat', 'typing']);
    expect(open?.data?.messages).toBeUndefined();
  });

  it('pushes each publish as one messages event carrying the cursors after it', async () => {
    const { comet, url } = await streamServer();
    const stream = await openStream(url, poll(['chat', 'typing']));
    const open = await stream.next();
    const first = await comet.publish('chat', { text: 'one\ntwo "quoted"' });
    const one = await stream.nextEvent();
    expect(one?.event).toBe('messages');
    expect(one?.data).toEqual({
      messages: [{ topic: 'chat', id: first, data: { text: 'one\ntwo "quoted"' } }],
      cursors: { ...open?.data?.cursors, chat: first },
    });
    const second = await comet.publish('typing', 'x');
    const two = await stream.nextEvent();
    expect(two?.data?.messages?.map((m) => m.id)).toEqual([second]);
    expect(two?.data?.cursors).toEqual({ chat: first, typing: second });
  });

  it('sends a burst published in one turn as one event', async () => {
    const { comet, url } = await streamServer();
    const stream = await openStream(url, poll(['a', 'b']));
    await stream.next();
    await Promise.all([comet.publish('a', 1), comet.publish('b', 2), comet.publish('a', 3)]);
    const batch = await stream.nextEvent();
    expect(batch?.data?.messages?.map((m) => [m.topic, m.data])).toEqual([
      ['a', 1],
      ['a', 3],
      ['b', 2],
    ]);
  });

  it('opens with the given cursors, then catches up in batches of batchLimit', async () => {
    const { comet, url } = await streamServer({ batchLimit: 2 });
    const start = (await post(url.replace('/_stream', ''), poll(['chat']))).body.cursors ?? {};
    for (let n = 1; n <= 5; n += 1) await comet.publish('chat', n);
    const stream = await openStream(url, poll(['chat'], start));
    expect((await stream.next())?.data).toEqual({ cursors: start, timings: { heartbeat: 15_000 } });
    const batches: unknown[][] = [];
    let last: PollAnswer | undefined;
    while (batches.flat().length < 5) {
      last = (await stream.nextEvent())?.data;
      batches.push(last?.messages?.map((m) => m.data) ?? []);
    }
    expect(batches).toEqual([[1, 2], [3, 4], [5]]);
    expect(last?.cursors).toEqual({ chat: last?.messages?.at(-1)?.id });
  });

  it('reports resets and refused topics in open, and streams the others', async () => {
    const { comet, url } = await streamServer({
      authorize: ({ topic }) => topic !== 'secret',
    });
    const stream = await openStream(url, poll(['chat', 'secret'], { chat: 'old-epoch-7' }));
    const open = await stream.next();
    expect(open?.data?.resets).toEqual(['chat']);
    expect(open?.data?.errors?.secret?.code).toBe('forbidden');
    expect(Object.keys(open?.data?.cursors ?? {})).toEqual(['chat']);
    const id = await comet.publish('chat', 'after');
    expect((await stream.nextEvent())?.data?.messages?.map((m) => m.id)).toEqual([id]);
  });

  it('opens with the refusals and ends when every topic is refused', async () => {
    const { url, broker } = await streamServer({ authorize: () => false });
    const stream = await openStream(url, poll(['secret']));
    const open = await stream.next();
    expect(open?.data).toEqual({
      cursors: {},
      errors: { secret: { code: 'forbidden', message: 'not allowed to poll topic "secret"' } },
    });
    expect(await stream.next()).toBeUndefined();
    expect(broker.listenerCount()).toBe(0);
  });

  it('writes a heartbeat comment at the heartbeat interval', async () => {
    const { url } = await streamServer({ heartbeatInterval: 20 });
    const stream = await openStream(url, poll(['chat']));
    expect((await stream.next())?.event).toBe('open');
    const beat = await stream.next();
    expect(beat).toEqual({ event: undefined, data: undefined, comment: 'hb' });
  });

  it('ends the stream after streamMaxTime, leaving no listener behind', async () => {
    const { comet, url, broker } = await streamServer({ streamMaxTime: 100 });
    const stream = await openStream(url, poll(['chat']));
    expect((await stream.next())?.event).toBe('open');
    expect(broker.listenerCount()).toBe(1);
    expect(await stream.nextEvent()).toBeUndefined();
    await expect.poll(() => comet.stats()).toMatchObject({ streams: 0, inFlight: 0 });
    expect(broker.listenerCount()).toBe(0);
  });

  it('announces its heartbeat period in open, so the client watches for it', async () => {
    const { url } = await streamServer({ heartbeatInterval: 4_321 });
    const stream = await openStream(url, poll(['chat']));
    const open = await stream.next();
    expect(open?.event).toBe('open');
    expect(open?.data?.timings).toEqual({ heartbeat: 4_321 });
  });

  it('releases a stream whose client left and writes nothing more into it', async () => {
    const comet = createCometServer({ heartbeatInterval: 10 });
    // Counts what the server writes into each response after that response closed.
    let writesAfterClose = 0;
    let closed = 0;
    const count = (res: ServerResponse) => {
      const write = res.write.bind(res);
      res.on('close', () => {
        closed += 1;
      });
      res.write = ((...args: Parameters<typeof res.write>) => {
        if (res.destroyed || res.closed) writesAfterClose += 1;
        return write(...args);
      }) as typeof res.write;
    };
    const http = createServer((req, res) => {
      count(res);
      comet.handle(req, res);
    });
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    const base = `http://127.0.0.1:${(http.address() as AddressInfo).port}/api/comet`;
    try {
      const stream = await openStream(`${base}/_stream`, poll(['chat']));
      expect((await stream.next())?.event).toBe('open');
      expect((await stream.next())?.comment).toBe('hb');
      expect(comet.stats()).toMatchObject({ held: 1, streams: 1, waiting: 1 });
      stream.abort();
      await expect.poll(() => closed).toBe(1);
      await expect.poll(() => comet.stats()).toMatchObject({ held: 0, streams: 0, waiting: 0 });
      // Several heartbeat periods later, and after a publish, nothing was written into it.
      await comet.publish('chat', 1);
      await new Promise((resolve) => setTimeout(resolve, 60));
      expect(writesAfterClose).toBe(0);
      expect((comet.broker as MemoryBroker).listenerCount()).toBe(0);
    } finally {
      await comet.close();
      http.closeAllConnections();
      await new Promise((resolve) => http.close(resolve));
    }
  });

  it('cleans up listener and timers when the client goes away', async () => {
    const { comet, url, broker } = await streamServer({ heartbeatInterval: 10 });
    const stream = await openStream(url, poll(['a', 'b']));
    await stream.next();
    expect(comet.stats()).toMatchObject({ streams: 1, inFlight: 1 });
    expect(broker.listenerCount()).toBe(1);
    stream.abort();
    await expect.poll(() => comet.stats()).toMatchObject({ streams: 0, inFlight: 0 });
    expect(broker.listenerCount()).toBe(0);
    // Publishing afterwards reaches nobody and breaks nothing.
    await comet.publish('a', 1);
  });

  it('ends open streams on close() so clients reconnect elsewhere, then answers 503', async () => {
    const { comet, url, broker } = await streamServer();
    const one = await openStream(url, poll(['chat']));
    const two = await openStream(url, poll(['chat', 'typing']));
    await one.next();
    await two.next();
    await comet.close();
    expect(await one.nextEvent()).toBeUndefined();
    expect(await two.nextEvent()).toBeUndefined();
    expect(broker.listenerCount()).toBe(0);
    const refused = await post(url, poll(['chat']));
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toBe('1');
  });

  it('answers errors before the stream opens as JSON', async () => {
    const { url } = await streamServer({ bodyLimit: 200 });
    const bad = await post(url, { v: 1, sessionGuid: 's', topics: ['_bad'] });
    expect(bad.status).toBe(400);
    expect(bad.body.error?.code).toBe('bad_request');
    const legacy = await post(url, { topics: ['chat'] });
    expect(legacy.status).toBe(400);
    expect(legacy.body.error?.message).toMatch(/"v": 1/);
    const large = await post(url, poll(['chat'], { chat: 'x'.repeat(300) }));
    expect(large.status).toBe(413);
    expect(large.body.error?.code).toBe('too_large');
    const get = await fetch(url);
    expect(get.status).toBe(405);
    expect(get.headers.get('allow')).toBe('POST, OPTIONS');
    await get.text();
  });

  it('is held back whole by a buffering front: open arrives only once the stream ended', async () => {
    const { comet, url, started } = await streamServer({ streamMaxTime: 300 });
    const front = await createFront({ targets: [started.url], bufferResponses: true });
    fronts.push(front);
    const start = (await post(url.replace('/_stream', ''), poll(['chat']))).body.cursors;
    // The answer's headers come through only at the end, so fetch resolves only then.
    const opening = openStream(`${front.url}${new URL(url).pathname}`, poll(['chat'], start));
    await expect.poll(() => comet.stats().streams).toBe(1);
    await comet.publish('chat', 'during');
    const stream = await opening;
    const open = await stream.next();
    expect(comet.stats().streams).toBe(0);
    expect(open?.event).toBe('open');
    expect((await stream.nextEvent())?.event).toBe('messages');
    expect(await stream.nextEvent()).toBeUndefined();
  });

  it('streams through a front that refuses upgrades and does not buffer', async () => {
    const { comet, url, started } = await streamServer();
    const front = await createFront({ targets: [started.url], refuseUpgrades: true });
    fronts.push(front);
    const stream = await openStream(`${front.url}${new URL(url).pathname}`, poll(['chat']));
    expect((await stream.next())?.event).toBe('open');
    // The open arrived while the stream is still running.
    expect(comet.stats().streams).toBe(1);
    const id = await comet.publish('chat', 'live');
    expect((await stream.nextEvent())?.data?.messages?.[0]?.id).toBe(id);
  });
});
