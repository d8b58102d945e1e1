/** Test helpers for the client: a manual clock, an online source, and a scripted msw server. */
import { HttpResponse, http } from 'msw';
import { setupServer } from 'msw/node';
import type { OnlineSource } from '../src/environment';
import type { PollRequest } from '../src/protocol';

export const BASE = 'http://comet.test/api/comet';

/** A manual clock for the client's injected timers: time moves only when a test says so. */
export function createClock() {
  let now = 1_000_000;
  let seq = 0;
  const timers = new Map<number, { at: number; fn: () => void }>();
  return {
    now: () => now,
    setTimeout: (fn: () => void, ms: number) => {
      seq += 1;
      timers.set(seq, { at: now + ms, fn });
      return seq;
    },
    clearTimeout: (id: unknown) => {
      timers.delete(id as number);
    },
    /** Delays of the pending timers from now, shortest first. */
    pending: () => [...timers.values()].map((t) => t.at - now).sort((a, b) => a - b),
    /** Moves time forward, running due timers in order. */
    advance(ms: number) {
      const end = now + ms;
      for (;;) {
        let next: [number, { at: number; fn: () => void }] | undefined;
        for (const entry of timers)
          if (entry[1].at <= end && (!next || entry[1].at < next[1].at)) next = entry;
        if (!next) break;
        timers.delete(next[0]);
        now = next[1].at;
        next[1].fn();
      }
      now = end;
    },
  };
}

/** An online source a test can switch. */
export function createOnline(initial = true) {
  let online = initial;
  const listeners = new Set<(online: boolean) => void>();
  const source: OnlineSource = {
    isOnline: () => online,
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
  return {
    source,
    set(value: boolean) {
      online = value;
      for (const l of listeners) l(value);
    },
  };
}

/** One held poll. */
export interface HeldPoll {
  body: PollRequest;
  headers: Headers;
  aborted: boolean;
  respond(status: number, body?: unknown, headers?: Record<string, string>): void;
  respondText(status: number, text: string): void;
  fail(): void;
}

/** An msw server that holds every poll until the test answers it. */
export function createPollServer() {
  const polls: HeldPoll[] = [];
  const sends: { topic: string; body: Record<string, unknown>; headers: Headers }[] = [];
  type SendReply = (
    topic: string,
    body: Record<string, unknown>,
    n: number,
  ) => Response | Promise<Response>;
  const okReply: SendReply = (_t, body, n) =>
    HttpResponse.json({ id: body.id, messageId: `m${n}` });
  let sendReply = okReply;
  const server = setupServer(
    http.post(BASE, async ({ request }) => {
      const body = (await request.json()) as PollRequest;
      // A client closed while its body was read (a finished test's) is not counted.
      if (request.signal.aborted) return new HttpResponse(null, { status: 499 });
      return new Promise<Response>((resolve) => {
        const poll: HeldPoll = {
          body,
          headers: request.headers,
          aborted: false,
          respond: (status, json = {}, headers) =>
            resolve(HttpResponse.json(json as Record<string, unknown>, { status, headers })),
          respondText: (status, text) => resolve(new HttpResponse(text, { status })),
          fail: () => resolve(HttpResponse.error()),
        };
        request.signal.addEventListener('abort', () => {
          poll.aborted = true;
          // The client has gone; what is answered here reaches nobody.
          resolve(new HttpResponse(null, { status: 499 }));
        });
        polls.push(poll);
      });
    }),
    http.post(`${BASE}/:topic`, async ({ request, params }) => {
      const body = (await request.json()) as Record<string, unknown>;
      sends.push({ topic: String(params.topic), body, headers: request.headers });
      return sendReply(String(params.topic), body, sends.length);
    }),
  );
  return {
    server,
    polls,
    sends,
    onSend(reply: SendReply) {
      sendReply = reply;
    },
    /** Forgets the polls, sends and send reply of a finished test. */
    reset() {
      polls.length = 0;
      sends.length = 0;
      sendReply = okReply;
    },
    /** The newest poll that is not aborted. */
    last(): HeldPoll {
      const live = polls.filter((p) => !p.aborted);
      const poll = live[live.length - 1];
      if (!poll) throw new Error('no live poll');
      return poll;
    },
  };
}
