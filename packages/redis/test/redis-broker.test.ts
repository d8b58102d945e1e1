import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  createRedisBroker,
  isRedisBrokerError,
  type RedisBroker,
  type RedisBrokerOptions,
} from '../src/index';
import { redisAvailable, startRedis, type TestRedis } from './redis-server';

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

describe.skipIf(!redisAvailable)('createRedisBroker', () => {
  let redis: TestRedis;
  const open: Array<{ close(): Promise<unknown> | unknown }> = [];

  beforeAll(async () => {
    // Small stream nodes so that approximate trimming (MAXLEN ~, MINID ~) bites at test sizes.
    redis = await startRedis({ args: ['--stream-node-max-entries', '4'] });
  });
  afterEach(async () => {
    await Promise.all(open.splice(0).map((item) => item.close()));
  });
  afterAll(async () => {
    await redis?.close();
  });

  /** A broker on the test Redis with its own key prefix, closed after the test. */
  function broker(options: RedisBrokerOptions = {}, prefix = `t${randomUUID()}:`): RedisBroker {
    const made = createRedisBroker({ redis: redis.url, keyPrefix: prefix, ...options });
    open.push(made);
    return made;
  }

  function rawClient(): Redis {
    const client = new Redis(redis.url, { lazyConnect: false });
    client.on('error', () => {}); // the restart tests kill Redis under it on purpose
    open.push({ close: () => client.quit() });
    return client;
  }

  describe('history', () => {
    it('reads the messages after a cursor, oldest first, with increasing ids', async () => {
      const b = broker();
      const start = await b.read('chat', undefined, 10);
      expect(start).toMatchObject({ messages: [], reset: false, more: false });
      const ids = [];
      for (let index = 0; index < 5; index += 1) ids.push(await b.publish('chat', { index }));
      expect(new Set(ids).size).toBe(5);

      const result = await b.read('chat', start.position, 10);
      expect(result.reset).toBe(false);
      expect(result.messages.map((message) => message.data)).toEqual(
        [0, 1, 2, 3, 4].map((index) => ({ index })),
      );
      expect(result.messages.map((message) => message.id)).toEqual(ids);
      expect(result.messages.every((message) => message.topic === 'chat')).toBe(true);
      expect(result.position).toBe(ids[4]);

      const after = await b.read('chat', ids[1], 10);
      expect(after.messages.map((message) => message.id)).toEqual(ids.slice(2));
    });

    it('answers a handshake with the current position and no messages', async () => {
      const b = broker();
      await b.publish('news', 'old');
      const last = await b.publish('news', 'older still');
      const handshake = await b.read('news', undefined, 10);
      expect(handshake).toEqual({ messages: [], position: last, reset: false, more: false });
      const next = await b.publish('news', 'new');
      const read = await b.read('news', handshake.position, 10);
      expect(read.messages.map((message) => message.id)).toEqual([next]);
    });

    it('keeps the position of an empty topic valid through its first publish', async () => {
      const b = broker();
      const empty = await b.read('fresh', undefined, 10);
      const again = await b.read('fresh', empty.position, 10);
      // Still nothing here: the position says so as of now ("<global epoch>:0-<ms>").
      expect(again).toMatchObject({ messages: [], reset: false, more: false });
      expect(again.position.split('-')[0]).toBe(empty.position.split('-')[0]);
      const first = await b.publish('fresh', 1);
      for (const position of [empty.position, again.position]) {
        const read = await b.read('fresh', position, 10);
        expect(read.reset).toBe(false);
        expect(read.messages.map((message) => message.id)).toEqual([first]);
      }
    });

    it('returns at most limit messages and says more follow', async () => {
      const b = broker();
      const start = await b.read('batch', undefined, 1);
      for (let index = 0; index < 7; index += 1) await b.publish('batch', index);
      const first = await b.read('batch', start.position, 3);
      expect(first.messages.map((message) => message.data)).toEqual([0, 1, 2]);
      expect(first.more).toBe(true);
      expect(first.position).toBe(first.messages[2]?.id);
      const second = await b.read('batch', first.position, 3);
      expect(second.messages.map((message) => message.data)).toEqual([3, 4, 5]);
      const third = await b.read('batch', second.position, 3);
      expect(third.messages.map((message) => message.data)).toEqual([6]);
      expect(third.more).toBe(false);
    });

    it('keeps topics apart and stores any JSON value', async () => {
      const b = broker();
      const a = await b.read('a', undefined, 10);
      const c = await b.read('c', undefined, 10);
      const values = [null, 0, 'text', [1, { deep: true }], { ü: '💬' }];
      for (const value of values) await b.publish('a', value);
      expect((await b.read('a', a.position, 10)).messages.map((message) => message.data)).toEqual(
        values,
      );
      expect((await b.read('c', c.position, 10)).messages).toEqual([]);
    });

    it('recent() gives the last messages oldest first and a position to continue from', async () => {
      const b = broker();
      expect((await b.recent('log', 5)).messages).toEqual([]);
      for (let index = 0; index < 6; index += 1) await b.publish('log', index);
      const recent = await b.recent('log', 3);
      expect(recent.messages.map((message) => message.data)).toEqual([3, 4, 5]);
      expect(recent.position).toBe(recent.messages[2]?.id);
      const later = await b.publish('log', 6);
      expect(
        (await b.read('log', recent.position, 10)).messages.map((message) => message.id),
      ).toEqual([later]);
      expect((await b.recent('log', 0)).messages).toEqual([]);
    });
  });

  describe('recent', () => {
    it('gives only the messages of the last maxAgeMs when asked', async () => {
      const prefix = `t${randomUUID()}:`;
      const b = broker({ maxAgeMs: 0 }, prefix);
      // An entry from 1970 (stream ids are times), then one of now.
      await rawClient().xadd(`${prefix}{aged}:s`, '1000-0', 'p', '0-0', 'd', '"old"');
      const fresh = await b.publish('aged', 'fresh');
      const recent = await b.recent('aged', 10, { maxAgeMs: 60_000 });
      expect(recent.messages.map((message) => message.data)).toEqual(['fresh']);
      expect(recent.position).toBe(fresh);
      expect((await b.recent('aged', 10)).messages).toHaveLength(2);
    });
  });

  describe('resets', () => {
    it('resets a cursor that was trimmed away by length, resuming at the oldest message kept', async () => {
      const b = broker({ maxLength: 4 });
      const start = await b.read('busy', undefined, 10);
      const first = await b.publish('busy', 0);
      for (let index = 1; index < 40; index += 1) await b.publish('busy', index);
      const kept = (await b.recent('busy', 100)).messages.map((message) => message.data);
      expect(kept.length).toBeLessThan(40);
      for (const cursor of [start.position, first]) {
        const read = await b.read('busy', cursor, 100);
        expect(read).toMatchObject({ messages: [], reset: true, more: false });
        const resumed = await b.read('busy', read.position, 100);
        expect(resumed.reset).toBe(false);
        expect(resumed.messages.map((message) => message.data)).toEqual(kept);
      }
      // A cursor still in history goes on without a reset.
      const recent = await b.recent('busy', 2);
      const tail = await b.read('busy', recent.messages[0]?.id, 10);
      expect(tail.reset).toBe(false);
      expect(tail.messages.map((message) => message.data)).toEqual([39]);
    });

    it('resets a cursor that was trimmed away by age', async () => {
      const b = broker({ maxAgeMs: 20, maxLength: 0 });
      const first = await b.publish('aging', 'first');
      await vi.waitFor(
        async () => {
          // Trimming by age happens on publish: keep publishing until the first one is gone.
          await b.publish('aging', 'later');
          expect((await b.read('aging', first, 100)).reset).toBe(true);
        },
        { timeout: 5000, interval: 25 },
      );
    });

    it('resets cursors it did not make, from the future, or from another topic', async () => {
      const b = broker();
      const position = (await b.read('x', undefined, 10)).position;
      const id = await b.publish('x', 1);
      const other = await b.publish('y', 1);
      const epoch = id.split(':')[0];
      const start = `${epoch}:0-0`;
      // Another epoch resumes at this epoch's start; a position of this epoch that never was
      // resumes after the messages it can have seen (none newer: the newest).
      const bad = [
        ['garbage', start],
        ['', start],
        ['1-0', start],
        [other, start],
        [`zzzzzzzz:${id.split(':')[1]}`, start],
        [`${epoch}:0-1`, start],
        [`${epoch}:99999999999999-0`, id],
        [`${epoch}:18446744073709551615-18446744073709551615`, id],
      ];
      for (const [cursor, resume] of bad) {
        const read = await b.read('x', cursor as string, 10);
        expect({ cursor, ...read }).toEqual({
          cursor,
          messages: [],
          position: resume,
          reset: true,
          more: false,
        });
      }
      expect((await b.read('x', start, 10)).messages.map((message) => message.id)).toEqual([id]);
      expect((await b.read('x', position, 10)).reset).toBe(false);
    });

    it('continues a cursor that had read everything when the stream was lost, and resets the others', async () => {
      const b = broker({}, `lost${randomUUID()}:`);
      const raw = rawClient();
      const empty = (await b.read('gone', undefined, 10)).position;
      const behind = await b.publish('gone', 'a');
      const newest = await b.publish('gone', 'a2');
      const keys = await raw.keys('lost*{gone}:s');
      expect(keys).toHaveLength(1);
      await raw.del(keys[0] as string); // evicted or expired: the meta key knows the newest id
      const next = await b.publish('gone', 'b');
      expect(next.split(':')[0]).toBe(newest.split(':')[0]);
      for (const cursor of [empty, behind]) {
        // Reset, resuming just before the oldest message kept: 'b'.
        expect(await b.read('gone', cursor, 10)).toEqual({
          messages: [],
          position: newest,
          reset: true,
          more: false,
        });
      }
      const fromNewest = await b.read('gone', newest, 10);
      expect(fromNewest.reset).toBe(false);
      expect(fromNewest.messages.map((message) => message.data)).toEqual(['b']);
    });

    it('resumes an old cursor after what the stream held when its epoch was lost', async () => {
      const b = broker({}, 'meta:');
      const raw = rawClient();
      const old = await b.publish('kept', 'a');
      await raw.del('meta:{kept}:m');
      // The stream outlived its epoch: 'a' is from before, the client may have seen it.
      const next = await b.publish('kept', 'b');
      expect(next.split(':')[0]).not.toBe(old.split(':')[0]);
      const read = await b.read('kept', old, 10);
      expect(read).toMatchObject({ messages: [], reset: true });
      expect((await b.read('kept', read.position, 10)).messages.map((m) => m.data)).toEqual(['b']);
    });
  });

  describe('bounds and expiry', () => {
    it('creates no key when reading topics nobody published to', async () => {
      const prefix = `t${randomUUID()}:`;
      const b = broker({}, prefix);
      const raw = rawClient();
      for (let poll = 0; poll < 100; poll += 1) {
        const topics = Array.from({ length: 10 }, (_, index) => `made-up:${poll}:${index}`);
        const positions = await Promise.all(topics.map((topic) => b.read(topic, undefined, 10)));
        await Promise.all(
          topics.map((topic, index) => b.read(topic, positions[index]?.position, 10)),
        );
        await b.recent(topics[0] as string, 5);
      }
      expect(await raw.keys(`${prefix}*`)).toEqual([`${prefix}epoch`]);
    });

    it("gives a published topic's keys TTLs of maxAgeMs plus slack, renewed on each publish", async () => {
      const prefix = `t${randomUUID()}:`;
      const b = broker({ maxAgeMs: 600_000 }, prefix);
      const raw = rawClient();
      await b.publish('room', 1);
      await raw.pexpire(`${prefix}{room}:s`, 5000);
      await raw.pexpire(`${prefix}{room}:m`, 5000);
      await b.publish('room', 2);
      const stream = await raw.pttl(`${prefix}{room}:s`);
      const meta = await raw.pttl(`${prefix}{room}:m`);
      expect(stream).toBeGreaterThan(600_000);
      expect(stream).toBeLessThanOrEqual(660_000);
      expect(meta).toBeGreaterThan(600_000 + 86_400_000);
      expect(meta).toBeLessThanOrEqual(660_000 + 86_400_000);
      const forever = broker({ maxAgeMs: 0 }, prefix);
      await forever.publish('kept', 1);
      expect(await raw.pttl(`${prefix}{kept}:s`)).toBe(-1);
    });

    it('resets a cursor into a topic whose keys all expired, and goes on from there', async () => {
      const prefix = `t${randomUUID()}:`;
      const b = broker({}, prefix);
      const raw = rawClient();
      const last = await b.publish('room', 'a');
      await raw.del(`${prefix}{room}:s`, `${prefix}{room}:m`);
      const read = await b.read('room', last, 10);
      expect(read).toMatchObject({ messages: [], reset: true });
      const again = await b.read('room', read.position, 10);
      expect(again).toMatchObject({ messages: [], reset: false });
      const next = await b.publish('room', 'b');
      const after = await b.read('room', again.position, 10);
      expect(after.reset).toBe(false);
      expect(after.messages.map((message) => message.id)).toEqual([next]);
    });

    it('resets a position of a topic without history older than a lineage can live', async () => {
      const b = broker({ maxAgeMs: 1000 });
      const empty = (await b.read('late', undefined, 10)).position;
      const [epoch, streamId] = empty.split(':');
      const ms = Number(streamId?.split('-')[1]);
      // A meta key lives maxAgeMs + 1 min + 1 day after its last publish.
      const old = `${epoch}:0-${ms - 1000 - 60_000 - 86_400_000 - 1}`;
      await b.publish('late', 1);
      expect((await b.read('late', old, 10)).reset).toBe(true);
      expect((await b.read('late', empty, 10)).messages.map((message) => message.data)).toEqual([
        1,
      ]);
    });

    it('keeps about maxBytes of JSON per topic', async () => {
      const b = broker({ maxBytes: 1000 });
      const start = await b.read('sized', undefined, 10);
      for (let index = 0; index < 40; index += 1) {
        await b.publish('sized', 'x'.repeat(98)); // 100 bytes of JSON
      }
      const kept = (await b.recent('sized', 100)).messages.length;
      // MAXLEN ~ keeps whole stream nodes (4 entries here): 10 messages and at most a node more.
      expect(kept).toBeGreaterThanOrEqual(10);
      expect(kept).toBeLessThanOrEqual(14);
      expect((await b.read('sized', start.position, 100)).reset).toBe(true);
    });

    it('holds a burst of 20 000 messages of 100 bytes with the default options', async () => {
      const b = broker();
      const start = await b.read('burst', undefined, 10);
      for (let chunk = 0; chunk < 20; chunk += 1) {
        await Promise.all(
          Array.from({ length: 1000 }, (_, index) =>
            b.publish('burst', { i: chunk * 1000 + index, pad: 'x'.repeat(80) }),
          ),
        );
      }
      const read = await b.read('burst', start.position, 100_000);
      expect(read.reset).toBe(false);
      expect(read.messages).toHaveLength(20_000);
    });
  });

  describe('wake-ups', () => {
    it('wakes listeners on every broker with the same prefix, only for their topics', async () => {
      const prefix = `w${randomUUID()}:`;
      const one = broker({}, prefix);
      const two = broker({}, prefix);
      const elsewhere = broker();
      const heardOnTwo: string[] = [];
      const heardElsewhere: string[] = [];
      const stop = two.listen(['room', 'other'], (topic) => heardOnTwo.push(topic));
      elsewhere.listen(['room'], (topic) => heardElsewhere.push(topic));
      await two.read('room', undefined, 1); // connected and subscribed
      await elsewhere.read('room', undefined, 1);

      await one.publish('room', 1);
      await one.publish('unrelated', 1);
      await vi.waitFor(() => expect(heardOnTwo).toEqual(['room']));
      stop();
      stop();
      await one.publish('room', 2);
      await one.publish('other', 2);
      // A marker topic proves the later publishes were delivered before we look.
      const marker = vi.fn();
      two.listen(['marker'], marker);
      await one.publish('marker', 0);
      await vi.waitFor(() => expect(marker).toHaveBeenCalledWith('marker'));
      expect(heardOnTwo).toEqual(['room']);
      expect(heardElsewhere).toEqual([]);
    });

    it('keeps waking the other listeners when one throws', async () => {
      const b = broker();
      await b.read('t', undefined, 1);
      const warning = vi.spyOn(process, 'emitWarning').mockImplementation(() => {});
      const good = vi.fn();
      b.listen(['t'], () => {
        throw new Error('listener bug');
      });
      b.listen(['t'], good);
      await b.publish('t', 1);
      await vi.waitFor(() => expect(good).toHaveBeenCalledTimes(1));
      expect(warning).toHaveBeenCalledWith(expect.stringContaining('listener bug'));
      warning.mockRestore();
    });
  });

  describe('batched publishes', () => {
    /** Counts the wake-up messages on the Pub/Sub channel of `prefix`. */
    async function countWakes(prefix: string): Promise<string[]> {
      const heard: string[] = [];
      const sub = rawClient();
      sub.on('message', (_channel: string, topic: string) => heard.push(topic));
      await sub.subscribe(`${prefix}wake`);
      return heard;
    }

    it('publishes the messages of one turn in one call per topic: each its id, in order, one wake-up per topic', async () => {
      const prefix = `b${randomUUID()}:`;
      const b = broker({}, prefix);
      const wakes = await countWakes(prefix);
      const start = await b.read('a', undefined, 1);
      const ids = await Promise.all(
        Array.from({ length: 20 }, (_, n) => b.publish(n % 2 === 0 ? 'a' : 'b', n)),
      );
      expect(new Set(ids).size).toBe(20);
      const read = await b.read('a', start.position, 100);
      expect(read.messages.map((m) => [m.id, m.data])).toEqual(
        ids.flatMap((id, n) => (n % 2 === 0 ? [[id, n]] : [])),
      );
      await b.publish('marker', 0);
      await vi.waitFor(() => expect(wakes).toContain('marker'));
      expect(wakes).toEqual(['a', 'b', 'marker']);
    });

    it('splits a long run of publishes into several calls, keeping every message in order', async () => {
      const prefix = `b${randomUUID()}:`;
      const b = broker({ maxLength: 10_000 }, prefix);
      const wakes = await countWakes(prefix);
      const start = await b.read('t', undefined, 1);
      const ids = await Promise.all(Array.from({ length: 600 }, (_, n) => b.publish('t', n)));
      const read = await b.read('t', start.position, 1000);
      expect(read.messages.map((m) => m.data)).toEqual(Array.from({ length: 600 }, (_, n) => n));
      expect(read.messages.map((m) => m.id)).toEqual(ids);
      await b.publish('marker', 0);
      await vi.waitFor(() => expect(wakes).toContain('marker'));
      // 256 + 256 + 88, then the marker.
      expect(wakes).toEqual(['t', 't', 't', 'marker']);
    });

    it('keeps the order of a topic when a publish with an idempotency key comes between plain ones', async () => {
      const b = broker();
      const start = await b.read('t', undefined, 1);
      await Promise.all([
        b.publish('t', 1),
        b.publish('t', 2, { idempotency: { key: 'k', ttlMs: 10_000 } }),
        b.publish('t', 3),
      ]);
      const read = await b.read('t', start.position, 10);
      expect(read.messages.map((m) => m.data)).toEqual([1, 2, 3]);
    });

    it('still publishes what was published just before close()', async () => {
      const prefix = `b${randomUUID()}:`;
      const b = broker({}, prefix);
      await b.read('t', undefined, 1);
      const published = b.publish('t', 'last');
      await b.close();
      const id = await published;
      const other = broker({}, prefix);
      expect((await other.recent('t', 10)).messages.map((m) => [m.id, m.data])).toEqual([
        [id, 'last'],
      ]);
    });

    it('rejects every publish of a batch when its call fails', async () => {
      const b = broker();
      await b.read('t', undefined, 1);
      await b.close();
      const results = await Promise.allSettled([b.publish('t', 1), b.publish('t', 2)]);
      expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    });
  });

  describe('idempotency', () => {
    it('publishes once per key across brokers, answering the first id to every repeat', async () => {
      const prefix = `i${randomUUID()}:`;
      const one = broker({}, prefix);
      const two = broker({}, prefix);
      const woken = vi.fn();
      two.listen(['chat'], woken);
      const once = { idempotency: { key: 'send-1', ttlMs: 10_000 } };
      const first = await one.publish('chat', 'hi', once);
      expect(await two.publish('chat', 'hi', once)).toBe(first);
      // Keys are per topic; another key publishes.
      const other = await two.publish('news', 'hi', once);
      expect(other).not.toBe(first);
      const second = await two.publish('chat', 'yo', {
        idempotency: { key: 'send-2', ttlMs: 10_000 },
      });
      const history = await one.recent('chat', 10);
      expect(history.messages.map((message) => [message.id, message.data])).toEqual([
        [first, 'hi'],
        [second, 'yo'],
      ]);
      // A repeat wakes nobody: nothing was published.
      await vi.waitFor(() => expect(woken).toHaveBeenCalledTimes(2));
    });

    it('publishes concurrent repeats on several brokers once', async () => {
      const prefix = `i${randomUUID()}:`;
      const brokers = [broker({}, prefix), broker({}, prefix), broker({}, prefix)];
      const once = { idempotency: { key: 'same', ttlMs: 10_000 } };
      const ids = await Promise.all(
        Array.from({ length: 30 }, (_, n) => (brokers[n % 3] as RedisBroker).publish('t', n, once)),
      );
      expect(new Set(ids).size).toBe(1);
      expect((await brokers[0]?.recent('t', 100))?.messages).toHaveLength(1);
    });

    it('forgets a key after its ttl', async () => {
      const b = broker();
      const once = { idempotency: { key: 'short', ttlMs: 30 } };
      const first = await b.publish('t', 1, once);
      await vi.waitFor(async () => expect(await b.publish('t', 2, once)).not.toBe(first), {
        timeout: 3000,
        interval: 20,
      });
    });
  });

  describe('bad input', () => {
    it('keeps the JSON text the server encoded already instead of encoding data again', async () => {
      const b = broker();
      // A value it could not encode itself: only the given text can have been kept.
      await b.publish('enc', { n: 1n }, { json: '{"n":"1"}' });
      const { messages } = await b.recent('enc', 1);
      expect(messages.map((m) => m.data)).toEqual([{ n: '1' }]);
    });

    it('rejects bad arguments with clear errors', async () => {
      const b = broker();
      await expect(b.publish('', 1)).rejects.toThrow(/topic must be a string/);
      await expect(b.publish('t', undefined)).rejects.toThrow(/JSON-serialisable/);
      await expect(b.publish('t', { n: 1n })).rejects.toThrow(/JSON-serialisable/);
      await expect(b.read('t', undefined, 0)).rejects.toThrow(/integer >= 1/);
      await expect(b.read('t', undefined, 1.5)).rejects.toThrow(/integer >= 1/);
      await expect(b.recent('t', -1)).rejects.toThrow(/integer >= 0/);
      await expect(b.publish('t', 1, { idempotency: { key: '', ttlMs: 1000 } })).rejects.toThrow(
        /key must be/,
      );
      await expect(b.publish('t', 1, { idempotency: { key: 'k', ttlMs: 0 } })).rejects.toThrow(
        /integer >= 1/,
      );
      expect(() => b.listen(['ok', ''], () => {})).toThrow(/topic must be/);
    });

    it('rejects bad options when made', () => {
      expect(() => createRedisBroker({ maxLength: -1 })).toThrow(/maxLength must be an integer/);
      expect(() => createRedisBroker({ maxAgeMs: 1.5 })).toThrow(/maxAgeMs/);
      expect(() => createRedisBroker({ redis: 'http://x' })).toThrow(/redis:\/\//);
      expect(() => createRedisBroker({ keyPrefix: 'a{b}' })).toThrow(/keyPrefix/);
    });

    it('rejects a stored entry it did not write as corrupt', async () => {
      const b = broker({}, 'corrupt:');
      const start = await b.publish('bad', 'good');
      await rawClient().xadd('corrupt:{bad}:s', '*', 'p', start.split(':')[1] ?? '', 'd', '{nope');
      const error = await b.read('bad', start, 10).catch((thrown: unknown) => thrown);
      expect(isRedisBrokerError(error) && error.code).toBe('corrupt');
    });
  });

  describe('Redis lost and back', () => {
    it('tells onError, rejects publishes, reconnects by itself and resets lost history', async () => {
      const b = broker();
      const errors: Error[] = [];
      b.onError((error) => errors.push(error));
      const woken = vi.fn();
      b.listen(['t'], woken);
      const start = await b.read('t', undefined, 10);
      const before = await b.publish('t', 'before');
      await vi.waitFor(() => expect(woken).toHaveBeenCalledTimes(1));

      // Publishes in flight when Redis dies settle (either way); none hangs.
      const inFlight = Promise.allSettled(
        Array.from({ length: 20 }, (_, index) => b.publish('t', index)),
      );
      await redis.stop();
      await vi.waitFor(() => expect(errors).toHaveLength(1));
      expect(isRedisBrokerError(errors[0]) && errors[0].code).toBe('unavailable');
      const settled = await inFlight;
      for (const result of settled) {
        if (result.status === 'rejected') expect(isRedisBrokerError(result.reason)).toBe(true);
      }
      const down = await b.publish('t', 'during').catch((thrown: unknown) => thrown);
      expect(isRedisBrokerError(down) && down.code).toBe('unavailable');
      expect(String(down)).toMatch(/Redis is unavailable/);

      await redis.start();
      const after = await eventually(() => b.publish('t', 'after'));
      const later = [await b.publish('t', 'later'), await b.publish('t', 'latest')];
      // Re-subscribing wakes every listener, because publishes in the gap woke nobody.
      await vi.waitFor(() => expect(woken.mock.calls.length).toBeGreaterThanOrEqual(2));
      expect(errors).toHaveLength(1);
      // An old cursor resumes at the first message of the new epoch, not at the newest: what
      // was published since Redis came back is still delivered.
      const epoch = after.split(':')[0];
      for (const cursor of [start.position, before]) {
        expect(await b.read('t', cursor, 10)).toEqual({
          messages: [],
          position: `${epoch}:0-0`,
          reset: true,
          more: false,
        });
      }
      const resumed = await b.read('t', `${epoch}:0-0`, 10);
      expect(resumed.messages.map((message) => message.id)).toEqual([after, ...later]);
    });

    it('resets cursors newer than a restored snapshot, and continues older ones', async () => {
      const b = broker();
      const raw = rawClient();
      const start = await b.read('snap', undefined, 10);
      const saved = await b.publish('snap', 'saved');
      await raw.save();
      const lost = await b.publish('snap', 'lost');
      await redis.restart(); // loads the snapshot from its dir: 'lost' is gone
      const next = await eventually(() => b.publish('snap', 'next'));
      expect((await b.read('snap', lost, 10)).reset).toBe(true);
      const fromSaved = await b.read('snap', saved, 10);
      expect(fromSaved.reset).toBe(false);
      expect(fromSaved.messages.map((message) => message.id)).toEqual([next]);
      const fromStart = await b.read('snap', start.position, 10);
      expect(fromStart.messages.map((message) => message.data)).toEqual(['saved', 'next']);
      await raw.flushall();
      await raw.save();
    });
  });

  describe('lifecycle', () => {
    it('quits its connections on close and rejects calls after', async () => {
      const b = broker();
      await b.read('t', undefined, 1);
      const raw = rawClient();
      const names = async () => String(await raw.client('LIST')).match(/name=cometkit-\S+/g) ?? [];
      expect((await names()).length).toBeGreaterThanOrEqual(2);
      const before = (await names()).length;
      await b.close();
      await b.close();
      await vi.waitFor(async () => expect((await names()).length).toBe(before - 2));
      const error = await b.publish('t', 1).catch((thrown: unknown) => thrown);
      expect(isRedisBrokerError(error) && error.code).toBe('closed');
    });

    it('rejects as unavailable when Redis cannot be reached at start', async () => {
      const b = createRedisBroker({ redis: 'redis://127.0.0.1:1', connectTimeoutMs: 300 });
      open.push(b);
      const error = await b.read('t', undefined, 1).catch((thrown: unknown) => thrown);
      expect(isRedisBrokerError(error) && error.code).toBe('unavailable');
      expect(String(error)).toMatch(/could not connect to Redis within 300 ms/);
    });
  });
});
