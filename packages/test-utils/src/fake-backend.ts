/**
 * The one fake cometkit backend for client tests at the network edge (msw): the core, React and
 * Angular tests all use it. It speaks protocol v1 over long-poll (`POST {url}` polls,
 * `POST {url}/{topic}` sends) and records every request. Two modes:
 * - `'auto'` (default) answers like a server: a handshake at once with the topic's position,
 *   held polls woken by `publish()`, a hold that ends with `{reconnect: true}`.
 * - `'scripted'` holds every poll until the test answers it (`respond`, `respondText`, `fail`),
 *   for tests that decide each answer (a 408, a body that is not JSON, a network error).
 * The real server has its own tests; this is small enough to read in one go.
 */
import type { Cursors, PollRequest, WireMessage } from '@cometkit/core/protocol';
import { HttpResponse, http } from 'msw';
import { type SetupServer, setupServer } from 'msw/node';

/** One poll the backend received. */
export interface FakePoll {
  /** The request body as sent. */
  body: PollRequest;
  /** Shorthands for `body.topics` and `body.cursors`. */
  topics: string[];
  cursors?: Cursors;
  headers: Headers;
  /** True once the client aborted it (unsubscribe, close, reconnect). */
  aborted: boolean;
  /** True once the backend answered it. */
  answered: boolean;
  /** Answers it with a JSON body (`{}` by default). */
  respond(status: number, body?: unknown, headers?: Record<string, string>): void;
  /** Answers it with a text body. */
  respondText(status: number, text: string): void;
  /** Answers it with a network error. */
  fail(): void;
}

/** One send the backend received. */
export interface FakeSend {
  topic: string;
  /** The request body (`{id, data}` from a cometkit client). */
  body: Record<string, unknown>;
  data: unknown;
  headers: Headers;
}

/** What a send hook may answer instead of the default: an error answer, or a whole response. */
export type SendRefusal = { status: number; code: string; message: string };
/** Decides a send's answer; `undefined` keeps the default (see {@link FakeBackendOptions.mode}). */
export type SendHook = (
  send: FakeSend,
  n: number,
) => SendRefusal | Response | Promise<Response> | undefined;

/** Options of {@link createFakeBackend}. */
export interface FakeBackendOptions {
  /**
   * The endpoint, absolute (Node's fetch has no page location to resolve a path against).
   * @default 'http://comet.test/api/comet'
   */
  url?: string;
  /**
   * `'auto'` answers like a server; `'scripted'` holds every poll until the test answers it,
   * and answers sends `{id, messageId: 'm<n>'}` without publishing.
   * @default 'auto'
   */
  mode?: 'auto' | 'scripted';
  /**
   * The longest hold in `'auto'` mode, in ms: a poll is held for `min(wait, maxHold)`.
   * @default 25000
   */
  maxHold?: number;
  /**
   * Starts msw at once (`onUnhandledRequest: 'error'`); `false` leaves `server.listen()` to the test.
   * @default true
   */
  listen?: boolean;
  /** Decides sends' answers; the test can replace it with `onSend()`. @default undefined */
  onSend?: SendHook;
}

/** A running fake backend. */
export interface FakeBackend {
  readonly url: string;
  readonly server: SetupServer;
  /** Every poll received, in order (in `'scripted'` mode not those aborted before arriving). */
  readonly polls: FakePoll[];
  /** Every send received, in order. */
  readonly sends: FakeSend[];
  /** The polls being held right now. */
  held(): FakePoll[];
  /** The most polls ever held at the same time. */
  peakHeld(): number;
  /** The newest poll that is not aborted; throws when there is none. */
  last(): FakePoll;
  /** Appends a message to `topic` and wakes the held polls (`'auto'` mode); returns its id. */
  publish(topic: string, data: unknown): string;
  /** Replaces the send hook (`undefined` restores the default answers). */
  onSend(hook: SendHook | undefined): void;
  /** Forgets the polls, sends and send hook of a finished test. */
  reset(): void;
  /** Ends every held poll with `{reconnect: true}` and stops msw. */
  close(): void;
}

/** The default endpoint of {@link createFakeBackend}. */
export const FAKE_URL = 'http://comet.test/api/comet';

/** Starts a fake backend; call `close()` when the test is done. */
export function createFakeBackend(options: FakeBackendOptions = {}): FakeBackend {
  const url = options.url ?? FAKE_URL;
  const scripted = options.mode === 'scripted';
  const maxHold = options.maxHold ?? 25_000;
  const initialHook = options.onSend;
  let sendHook = initialHook;
  const history = new Map<string, WireMessage[]>();
  const wakers = new Set<() => void>();
  const polls: FakePoll[] = [];
  const sends: FakeSend[] = [];
  let nextId = 1;
  let peak = 0;

  const held = () => polls.filter((poll) => !poll.answered && !poll.aborted);
  const positionOf = (topic: string) => history.get(topic)?.at(-1)?.id ?? '0';
  /** What a poll gets now: messages after its cursors, or `undefined` to keep holding. */
  const answerFor = (body: PollRequest) => {
    const messages: WireMessage[] = [];
    const cursors: Cursors = {};
    let handshake = false;
    for (const topic of body.topics) {
      const cursor = body.cursors?.[topic];
      // A rewind by count (no clock here for `since`): the last messages first.
      const count = cursor === undefined ? body.rewind?.[topic]?.count : undefined;
      if (count !== undefined) messages.push(...(history.get(topic) ?? []).slice(-count));
      if (cursor === undefined) handshake = true;
      else
        messages.push(...(history.get(topic) ?? []).filter((m) => Number(m.id) > Number(cursor)));
      cursors[topic] = positionOf(topic);
    }
    return handshake || messages.length > 0 ? { messages, cursors } : undefined;
  };
  const reconnect = (body: PollRequest) => ({
    reconnect: true,
    cursors: Object.fromEntries(body.topics.map((topic) => [topic, positionOf(topic)])),
  });

  const server = setupServer(
    http.post(url, async ({ request }) => {
      const body = (await request.json()) as PollRequest;
      // A client closed while its body was read (a finished test's) is not counted.
      if (scripted && request.signal.aborted) return new HttpResponse(null, { status: 499 });
      return new Promise<Response>((resolve) => {
        let timer: ReturnType<typeof setTimeout> | undefined;
        const finish = (response: Response) => {
          if (poll.answered) return;
          poll.answered = true;
          wakers.delete(wake);
          clearTimeout(timer);
          resolve(response);
        };
        const poll: FakePoll = {
          body,
          topics: body.topics,
          cursors: body.cursors,
          headers: request.headers,
          aborted: false,
          answered: false,
          respond: (status, json = {}, headers) =>
            finish(HttpResponse.json(json as Record<string, unknown>, { status, headers })),
          respondText: (status, text) => finish(new HttpResponse(text, { status })),
          fail: () => finish(HttpResponse.error()),
        };
        const wake = () => {
          const answer = answerFor(body);
          if (answer) finish(HttpResponse.json(answer));
        };
        polls.push(poll);
        request.signal.addEventListener('abort', () => {
          poll.aborted = true;
          // The client has gone; what is answered here reaches nobody.
          finish(new HttpResponse(null, { status: 499 }));
        });
        if (scripted) return;
        wake();
        if (poll.answered) return;
        peak = Math.max(peak, held().length);
        wakers.add(wake);
        timer = setTimeout(
          () => finish(HttpResponse.json(reconnect(body))),
          Math.min(body.wait ?? 25_000, maxHold),
        );
      });
    }),
    http.post(`${url}/:topic`, async ({ request, params }) => {
      const body = (await request.json()) as Record<string, unknown>;
      const send: FakeSend = {
        topic: decodeURIComponent(String(params.topic)),
        body,
        data: body.data,
        headers: request.headers,
      };
      sends.push(send);
      const hooked = sendHook?.(send, sends.length);
      if (hooked instanceof Response || hooked instanceof Promise) return hooked;
      if (hooked)
        return HttpResponse.json(
          { error: { code: hooked.code, message: hooked.message } },
          { status: hooked.status },
        );
      const messageId = scripted ? `m${sends.length}` : publish(send.topic, send.data);
      return HttpResponse.json({ id: body.id, messageId });
    }),
  );

  function publish(topic: string, data: unknown): string {
    const id = String(nextId++);
    const list = history.get(topic) ?? [];
    list.push({ topic, id, data });
    history.set(topic, list);
    for (const wake of [...wakers]) wake();
    return id;
  }

  if (options.listen !== false) server.listen({ onUnhandledRequest: 'error' });
  return {
    url,
    server,
    polls,
    sends,
    held,
    peakHeld: () => peak,
    last() {
      const poll = polls.filter((p) => !p.aborted).at(-1);
      if (!poll) throw new Error('no live poll');
      return poll;
    },
    publish,
    onSend(hook) {
      sendHook = hook;
    },
    reset() {
      polls.length = 0;
      sends.length = 0;
      sendHook = initialHook;
    },
    close() {
      for (const poll of held()) poll.respond(200, { reconnect: true });
      server.close();
    },
  };
}
