/**
 * A tiny protocol-v1 long-poll endpoint as msw handlers, for tests at the network edge: it
 * records every poll, holds polls until a message arrives (or the client aborts), and counts
 * held requests so tests can assert "one held request".
 */
import { type CometClient, createCometClient, type TopicMap } from '@cometkit/core';
import type { PollAnswer, PollRequest, WireMessage } from '@cometkit/core/protocol';
import { HttpResponse, http } from 'msw';
import { type SetupServer, setupServer } from 'msw/node';

/** Absolute, because Node's fetch has no page location to resolve `/api/comet` against. */
export const COMET_URL = 'http://comet.test/api/comet';

/** What a test's send hook may answer instead of publishing. */
export type SendRefusal = { status: number; code: string; message: string };

export interface FakeComet {
  readonly server: SetupServer;
  /** Every poll body received, in order. */
  readonly polls: PollRequest[];
  /** Every send body received, in order, with its topic. */
  readonly sends: { topic: string; data: unknown }[];
  /** Polls held right now. */
  held(): number;
  /** The most polls ever held at the same time. */
  peakHeld(): number;
  /** Appends a message and wakes the held polls; returns its id. */
  publish(topic: string, data: unknown): string;
  /** Decides what a send does; the default publishes. */
  onSend?: (topic: string, data: unknown) => SendRefusal | undefined;
}

/** Starts the fake endpoint; call `fake.server.close()` in `afterEach`. */
export function startFakeComet(): FakeComet {
  const history = new Map<string, WireMessage[]>();
  const waiters = new Set<() => void>();
  let nextId = 1;
  let held = 0;
  let peak = 0;

  const positionOf = (topic: string) => history.get(topic)?.at(-1)?.id ?? '0';

  const answer = (request: PollRequest): PollAnswer | undefined => {
    const messages: WireMessage[] = [];
    const cursors: Record<string, string> = {};
    let now = false;
    for (const topic of request.topics) {
      const cursor = request.cursors?.[topic];
      if (cursor === undefined) now = true;
      else
        messages.push(...(history.get(topic) ?? []).filter((m) => Number(m.id) > Number(cursor)));
      cursors[topic] = positionOf(topic);
    }
    return now || messages.length > 0 ? { messages, cursors } : undefined;
  };

  const fake: FakeComet = {
    polls: [],
    sends: [],
    held: () => held,
    peakHeld: () => peak,
    publish(topic, data) {
      const id = String(nextId++);
      const list = history.get(topic) ?? [];
      list.push({ topic, id, data });
      history.set(topic, list);
      for (const wake of [...waiters]) wake();
      return id;
    },
    server: setupServer(
      http.post(COMET_URL, async ({ request }) => {
        const body = (await request.json()) as PollRequest;
        fake.polls.push(body);
        const immediate = answer(body);
        if (immediate) return HttpResponse.json(immediate);
        held++;
        peak = Math.max(peak, held);
        try {
          // Hold until a message, the client's abort, or a short hold time (a real server's
          // `wait`), whichever comes first.
          await new Promise<void>((resolve) => {
            const done = () => {
              waiters.delete(done);
              clearTimeout(timer);
              resolve();
            };
            const timer = setTimeout(done, Math.min(body.wait ?? 25_000, 5_000));
            waiters.add(done);
            request.signal.addEventListener('abort', done, { once: true });
          });
        } finally {
          held--;
        }
        return HttpResponse.json(
          answer(body) ?? {
            reconnect: true,
            cursors: Object.fromEntries(body.topics.map((t) => [t, positionOf(t)])),
          },
        );
      }),
      http.post(`${COMET_URL}/:topic`, async ({ request, params }) => {
        const topic = decodeURIComponent(String(params.topic));
        const body = (await request.json()) as { id: string; data: unknown };
        fake.sends.push({ topic, data: body.data });
        const refusal = fake.onSend?.(topic, body.data);
        if (refusal)
          return HttpResponse.json(
            { error: { code: refusal.code, message: refusal.message } },
            { status: refusal.status },
          );
        return HttpResponse.json({ id: body.id, messageId: fake.publish(topic, body.data) });
      }),
    ),
  };
  fake.server.listen({ onUnhandledRequest: 'error' });
  return fake;
}

/** A real core client pointed at the fake, long-poll only, with a short idle grace. */
export function createTestClient<Topics extends TopicMap = TopicMap>(): CometClient<Topics> {
  return createCometClient<Topics>({ url: COMET_URL, transports: ['longpoll'], idleGrace: 20 });
}
