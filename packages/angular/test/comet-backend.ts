import { HttpResponse, http } from 'msw';
import { type SetupServer, setupServer } from 'msw/node';

/** Where the msw backend answers; tests give this to `provideComet({ url })`. */
export const BASE_URL = 'http://localhost:3000/api/comet';

interface PollBody {
  topics?: string[];
  cursors?: Record<string, string>;
  wait?: number;
}

interface StoredMessage {
  topic: string;
  id: string;
  data: unknown;
}

/** A long-poll request the backend is holding. */
export interface HeldPoll {
  topics: string[];
  /** True once the client aborted it (unsubscribe, close, reconnect). */
  aborted: boolean;
  /** True once the backend answered it. */
  answered: boolean;
}

/**
 * A minimal protocol-v1 long-poll backend for msw: handshakes, holds, publishes, sends.
 * Small enough to read in one go; the real server has its own tests.
 */
export interface CometBackend {
  server: SetupServer;
  /** Every poll request received, in order. */
  polls: HeldPoll[];
  /** Polls being held right now. */
  held(): HeldPoll[];
  /** Publishes `data` on `topic` and answers the polls waiting for it. */
  publish(topic: string, data: unknown): string;
  /** Bodies of the sends received. */
  sends: unknown[];
  close(): void;
}

const pad = (n: number) => String(n).padStart(10, '0');

export function createCometBackend(): CometBackend {
  const log = new Map<string, StoredMessage[]>();
  const waiting = new Set<() => void>();
  const finishers = new Set<() => void>();
  const polls: HeldPoll[] = [];
  const sends: unknown[] = [];

  const position = (topic: string) => pad(log.get(topic)?.length ?? 0);
  const after = (topic: string, cursor: string) =>
    (log.get(topic) ?? []).filter((message) => message.id > cursor);

  const publish = (topic: string, data: unknown) => {
    const list = log.get(topic) ?? [];
    log.set(topic, list);
    const id = pad(list.length + 1);
    list.push({ topic, id, data });
    for (const wake of [...waiting]) wake();
    return id;
  };

  const server = setupServer(
    http.post(BASE_URL, async ({ request }) => {
      const body = (await request.json()) as PollBody;
      const topics = body.topics ?? [];
      const poll: HeldPoll = { topics, aborted: false, answered: false };
      polls.push(poll);
      const answer = () => {
        const cursors: Record<string, string> = {};
        const messages: StoredMessage[] = [];
        let handshake = false;
        for (const topic of topics) {
          const cursor = body.cursors?.[topic];
          if (cursor === undefined) handshake = true;
          else messages.push(...after(topic, cursor));
          cursors[topic] = position(topic);
        }
        return { messages, cursors, ready: handshake || messages.length > 0 };
      };
      const first = answer();
      if (first.ready) {
        poll.answered = true;
        return HttpResponse.json({ messages: first.messages, cursors: first.cursors });
      }
      return new Promise<Response>((resolve) => {
        const done = (response: Response) => {
          waiting.delete(wake);
          finishers.delete(finish);
          clearTimeout(timer);
          poll.answered = true;
          resolve(response);
        };
        const wake = () => {
          const next = answer();
          if (next.ready)
            done(HttpResponse.json({ messages: next.messages, cursors: next.cursors }));
        };
        const timer = setTimeout(
          () => done(HttpResponse.json({ reconnect: true, cursors: answer().cursors })),
          Math.min(body.wait ?? 25_000, 25_000),
        );
        const finish = () => done(HttpResponse.json({ reconnect: true }));
        waiting.add(wake);
        finishers.add(finish);
        request.signal.addEventListener('abort', () => {
          poll.aborted = true;
          done(HttpResponse.json({ reconnect: true }));
        });
      });
    }),
    http.post(`${BASE_URL}/:topic`, async ({ request, params }) => {
      const body = (await request.json()) as { id: string; data: unknown };
      sends.push(body);
      const topic = decodeURIComponent(String(params.topic));
      const data = body.data as { text?: unknown };
      if (data && typeof data === 'object' && data.text === '') {
        return HttpResponse.json(
          { error: { code: 'bad_request', message: 'text must be 1 to 2000 characters' } },
          { status: 400 },
        );
      }
      return HttpResponse.json({ id: body.id, messageId: publish(topic, body.data) });
    }),
  );
  server.listen({ onUnhandledRequest: 'error' });

  return {
    server,
    polls,
    sends,
    held: () => polls.filter((poll) => !poll.answered),
    publish,
    close() {
      for (const finish of [...finishers]) finish();
      server.close();
    },
  };
}
