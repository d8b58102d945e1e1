import type { ErrorBody, LegacyAnswer, PollAnswer, SendAnswer } from '@cometkit/core/protocol';
import { type StartedServer, startServer } from '@cometkit/test-utils';
import { type CometServer, type CometServerOptions, createCometServer } from '../src/index';

/** Every answer shape at once, so tests can read any key of what came back. */
export type WireAnswer = PollAnswer & Partial<ErrorBody> & Partial<SendAnswer> & LegacyAnswer;

/** A server on loopback, closed by `stopAll()` in afterEach. */
const running: StartedServer[] = [];

export async function serve(
  options: CometServerOptions = {},
): Promise<{ comet: CometServer; url: string; base: string; started: StartedServer }> {
  const comet = createCometServer(options);
  const started = await startServer(comet);
  running.push(started);
  return {
    comet,
    url: started.url,
    base: `${started.url}${options.path ?? '/api/comet'}`,
    started,
  };
}

export async function stopAll(): Promise<void> {
  await Promise.all(running.splice(0).map((server) => server.close()));
}

export interface Answer {
  status: number;
  headers: Headers;
  body: WireAnswer;
}

/** POSTs `body` (JSON unless a string) and reads the JSON answer. */
export async function post(
  url: string,
  body: unknown,
  init: { signal?: AbortSignal; headers?: Record<string, string>; method?: string } = {},
): Promise<Answer> {
  const response = await fetch(url, {
    method: init.method ?? 'POST',
    headers: { 'content-type': 'application/json', ...init.headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
    signal: init.signal,
  });
  const text = await response.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {}
  return { status: response.status, headers: response.headers, body: parsed as WireAnswer };
}

/** A v1 poll body. */
export function poll(
  topics: string[],
  cursors: Record<string, string> = {},
  wait?: number,
): Record<string, unknown> {
  return { v: 1, sessionGuid: 's-1', topics, cursors, ...(wait === undefined ? {} : { wait }) };
}
