/**
 * A server written the way the original Comet design describes it, for compatibility tests:
 * it holds a `POST {path}` whose body is `{topics, sessionGuid, userId}`, answers one message
 * per answer as `{"topic", "data"}` (no id, no cursors), or `{"reconnect": true}` at the end of
 * its hold. Messages published while a session has no held request wait in that session's queue.
 * A send is `POST {path}/{topic}`, published and answered with exactly `{"ok": true}` (no
 * `messageId`, no idempotency: a repeat is published again).
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** Options of {@link startLegacyServer}. */
export interface LegacyServerOptions {
  /**
   * The endpoint path.
   * @default '/api/comet'
   */
  path?: string;
  /**
   * How long a poll is held before `{"reconnect": true}`, in ms.
   * @default 25000
   */
  hold?: number;
}

/** A running legacy server. */
export interface LegacyServer {
  /** The endpoint's absolute URL on loopback. */
  url: string;
  /** Every poll body received, in order. */
  requests: { topics: string[]; sessionGuid?: string; userId?: string }[];
  /** Every send body received (`POST {path}/{topic}`), in order, repeats included. */
  sends: { topic: string; body: Record<string, unknown> }[];
  /** Queues `data` for every session following `topic`, answering held polls at once. */
  publish(topic: string, data: unknown): void;
  /** Stops the server and ends held polls. */
  close(): Promise<void>;
}

interface Session {
  topics: Set<string>;
  queue: { topic: string; data: unknown }[];
  held?: { response: ServerResponse; timer: ReturnType<typeof setTimeout> };
}

/** Starts a legacy-style server on 127.0.0.1 and a free port. */
export async function startLegacyServer(options: LegacyServerOptions = {}): Promise<LegacyServer> {
  const { path = '/api/comet', hold = 25_000 } = options;
  const sessions = new Map<string, Session>();
  const requests: LegacyServer['requests'] = [];
  const sends: LegacyServer['sends'] = [];

  const answer = (session: Session, body: unknown) => {
    const held = session.held;
    if (!held) return;
    session.held = undefined;
    clearTimeout(held.timer);
    held.response.writeHead(200, { 'content-type': 'application/json' });
    held.response.end(JSON.stringify(body));
  };

  const server = createServer((request: IncomingMessage, response: ServerResponse) => {
    const url = request.url ?? '';
    const sendTopic = url.startsWith(`${path}/`)
      ? decodeURIComponent(url.slice(path.length + 1))
      : undefined;
    if (request.method !== 'POST' || (url !== path && !sendTopic)) {
      response.writeHead(404).end();
      return;
    }
    let text = '';
    request.setEncoding('utf8');
    request.on('data', (chunk: string) => {
      text += chunk;
    });
    request.on('end', () => {
      let body: Record<string, unknown>;
      try {
        body = JSON.parse(text);
      } catch {
        response.writeHead(400).end();
        return;
      }
      if (sendTopic) {
        sends.push({ topic: sendTopic, body });
        publish(sendTopic, (body as { data?: unknown }).data);
        response.writeHead(200, { 'content-type': 'application/json' });
        response.end('{"ok": true}');
        return;
      }
      const topics = Array.isArray(body.topics) ? body.topics.map(String) : [];
      const guid = typeof body.sessionGuid === 'string' ? body.sessionGuid : 'anonymous';
      requests.push({
        topics,
        sessionGuid: guid,
        userId: typeof body.userId === 'string' ? body.userId : undefined,
      });
      let session = sessions.get(guid);
      if (!session) {
        session = { topics: new Set(), queue: [] };
        sessions.set(guid, session);
      }
      const s = session;
      s.topics = new Set(topics);
      if (s.held) answer(s, { reconnect: true });
      const timer = setTimeout(() => answer(s, { reconnect: true }), hold);
      s.held = { response, timer };
      // A held client that went away: forget its request (the response's close tells us).
      response.on('close', () => {
        if (s.held?.response === response) {
          clearTimeout(s.held.timer);
          s.held = undefined;
        }
      });
      const next = s.queue.shift();
      if (next) answer(s, next);
    });
  });

  function publish(topic: string, data: unknown) {
    for (const session of sessions.values()) {
      if (!session.topics.has(topic)) continue;
      if (session.held && session.queue.length === 0) answer(session, { topic, data });
      else session.queue.push({ topic, data });
    }
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}${path}`,
    requests,
    sends,
    publish,
    close() {
      for (const session of sessions.values()) answer(session, { reconnect: true });
      server.closeAllConnections();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
