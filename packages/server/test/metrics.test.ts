import { startServer } from '@cometkit/test-utils';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { type CometMetrics, createCometMetrics } from '../src/index';
import { poll, post, serve, stopAll } from './helpers';

afterEach(stopAll);

const KEY = 'test-key-0123456789abcdef';

/** Scrapes `metrics` over HTTP and parses the answer as the Prometheus text format. */
async function scrape(metrics: CometMetrics) {
  const started = await startServer({ handle: metrics.handle });
  try {
    const response = await fetch(`${started.url}/metrics`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = await response.text();
    const families = parsePrometheusTextFormat(text);
    /** The value of the sample of `name` whose labels include `labels` (0 when absent). */
    const value = (name: string, labels: Record<string, string> = {}): number => {
      const family = families.find((entry) => entry.name === name);
      const sample = family?.metrics.find((entry) =>
        Object.entries(labels).every(([key, wanted]) => entry.labels?.[key] === wanted),
      );
      return Number(sample?.value ?? 0);
    };
    /** The `_count` of histogram `name` with `operation` (the parser drops histogram labels). */
    const count = (name: string, operation: string): number => {
      const line = text
        .split('\n')
        .find((entry) => entry.startsWith(`${name}_count{operation="${operation}"} `));
      return Number(line?.split(' ')[1] ?? 0);
    };
    return { families, value, count };
  } finally {
    await started.close();
  }
}

describe('Prometheus metrics', () => {
  it('serves every metric family as parseable Prometheus text before any traffic', async () => {
    const metrics = createCometMetrics();
    await serve({ metrics });
    const { families } = await scrape(metrics);
    expect(families.map((family) => family.name).sort()).toEqual([
      'cometkit_authorization_refusals_total',
      'cometkit_broker_duration_seconds',
      'cometkit_broker_errors_total',
      'cometkit_connections_closed_total',
      'cometkit_connections_opened_total',
      'cometkit_held_requests',
      'cometkit_http_answers_total',
      'cometkit_in_flight_requests',
      'cometkit_limits_hit_total',
      'cometkit_messages_delivered_total',
      'cometkit_messages_published_total',
      'cometkit_resets_total',
    ]);
  });

  it('counts publishes per allow-listed topic and the rest under _other', async () => {
    const metrics = createCometMetrics({ topics: ['chat'] });
    const { comet, base } = await serve({ metrics, publishApi: { key: KEY } });
    await comet.publish('chat', 1);
    await comet.publish('chat', 2);
    await comet.publish('made-up-1', 3);
    await post(
      `${base}/_publish`,
      { topic: 'made-up-2', data: 4 },
      { headers: { authorization: `Bearer ${KEY}` } },
    );
    const { value, families, count } = await scrape(metrics);
    expect(value('cometkit_messages_published_total', { topic: 'chat' })).toBe(2);
    expect(value('cometkit_messages_published_total', { topic: '_other' })).toBe(2);
    const topics = families
      .find((family) => family.name === 'cometkit_messages_published_total')
      ?.metrics.map((sample) => sample.labels?.topic);
    expect(topics?.sort()).toEqual(['_other', 'chat']);
    expect(value('cometkit_http_answers_total', { route: 'publish', status: '200' })).toBe(1);
    expect(count('cometkit_broker_duration_seconds', 'publish')).toBe(4);
  });

  it('shows a held long-poll in held_requests and counts its answer status', async () => {
    const metrics = createCometMetrics();
    const { comet, base } = await serve({ metrics });
    const handshake = await post(base, poll(['chat']));
    const held = post(base, poll(['chat'], handshake.body.cursors, 5000));
    await expect.poll(() => comet.stats().waiting).toBe(1);
    const during = await scrape(metrics);
    expect(during.value('cometkit_held_requests', { transport: 'longpoll' })).toBe(1);
    await comet.publish('chat', 'wake');
    await held;
    const after = await scrape(metrics);
    expect(after.value('cometkit_held_requests', { transport: 'longpoll' })).toBe(0);
    expect(after.value('cometkit_http_answers_total', { route: 'poll', status: '200' })).toBe(2);
  });

  it('counts deliveries per transport and opened and closed streams and WebSockets', async () => {
    const metrics = createCometMetrics({ topics: ['chat'] });
    const { comet, base, url } = await serve({ metrics });
    // Long-poll: a held poll woken by one message.
    const handshake = await post(base, poll(['chat']));
    const held = post(base, poll(['chat'], handshake.body.cursors, 5000));
    await expect.poll(() => comet.stats().waiting).toBe(1);
    await comet.publish('chat', 1);
    await held;
    // Stream: open, then one message.
    const controller = new AbortController();
    const response = await fetch(`${base}/_stream`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(poll(['chat'], { chat: handshake.body.cursors?.chat as string })),
      signal: controller.signal,
    });
    const reader = response.body?.getReader();
    let text = '';
    const readUntil = async (needle: string) => {
      while (!text.includes(needle)) {
        const chunk = await reader?.read();
        if (!chunk || chunk.done) throw new Error('the stream ended');
        text += new TextDecoder().decode(chunk.value);
      }
    };
    // The stream starts after the first message: it gets it at once, as `messages`.
    await readUntil('event: messages');
    // WebSocket: open, poll from the newest position, one more message.
    const ws = new WebSocket(`${url.replace('http', 'ws')}/api/comet/_ws`);
    const frames: Array<{ type: string }> = [];
    ws.on('message', (data) => frames.push(JSON.parse(data.toString())));
    await new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    ws.send(JSON.stringify({ type: 'poll', ...poll(['chat']) }));
    await expect.poll(() => frames.some((frame) => frame.type === 'open')).toBe(true);
    await comet.publish('chat', 2);
    await expect.poll(() => frames.some((frame) => frame.type === 'messages')).toBe(true);
    await readUntil('"data":2');
    const during = await scrape(metrics);
    expect(during.value('cometkit_connections_opened_total', { transport: 'stream' })).toBe(1);
    expect(during.value('cometkit_connections_opened_total', { transport: 'websocket' })).toBe(1);
    expect(during.value('cometkit_held_requests', { transport: 'websocket' })).toBe(1);
    expect(during.value('cometkit_held_requests', { transport: 'stream' })).toBe(1);
    const delivered = (transport: string) =>
      during.value('cometkit_messages_delivered_total', { transport, topic: 'chat' });
    expect([delivered('longpoll'), delivered('stream'), delivered('websocket')]).toEqual([1, 2, 1]);
    controller.abort();
    ws.close();
    await expect.poll(() => comet.stats().sockets + comet.stats().streams).toBe(0);
    const after = await scrape(metrics);
    expect(after.value('cometkit_connections_closed_total', { transport: 'stream' })).toBe(1);
    expect(after.value('cometkit_connections_closed_total', { transport: 'websocket' })).toBe(1);
  });

  it('counts authorization refusals, resets and body limits', async () => {
    const metrics = createCometMetrics();
    const { base } = await serve({
      metrics,
      bodyLimit: 300,
      authorize: ({ topic }) => topic !== 'secret',
    });
    await post(base, poll(['chat', 'secret']));
    await post(base, poll(['chat'], { chat: 'not-a-cursor-of-this-broker' }));
    const big = await post(base, { ...poll(['chat']), pad: 'x'.repeat(400) });
    expect(big.status).toBe(413);
    const { value } = await scrape(metrics);
    expect(
      value('cometkit_authorization_refusals_total', { action: 'poll', code: 'forbidden' }),
    ).toBe(1);
    expect(value('cometkit_resets_total', { topic: '_other' })).toBe(1);
    expect(value('cometkit_limits_hit_total', { limit: 'body' })).toBe(1);
    expect(value('cometkit_http_answers_total', { route: 'poll', status: '413' })).toBe(1);
  });

  it('counts broker errors by operation', async () => {
    const metrics = createCometMetrics();
    const { comet } = await serve({ metrics });
    await comet.broker.close();
    await expect(comet.publish('chat', 1)).rejects.toThrow();
    const { value } = await scrape(metrics);
    expect(value('cometkit_broker_errors_total', { operation: 'publish' })).toBe(1);
  });

  it('registers into a registry you give, under your prefix', async () => {
    const registry = new Registry();
    const metrics = createCometMetrics({ registry, prefix: 'app_comet_' });
    expect(metrics.registry).toBe(registry);
    expect(await registry.getSingleMetricAsString('app_comet_held_requests')).toMatch(
      /# TYPE app_comet_held_requests gauge/,
    );
  });
});
