/**
 * The Node entry point's {@link HttpPost}: polls and sends written straight to keep-alive TCP
 * (or TLS) connections, the answer read by a small HTTP/1.1 reader (`http1.ts`), with no
 * `http.request`, agent, streams, ky, `Request` or `Response` in between. Measured with 1 000
 * clients in one process (bench/PEERS.md): fetch and ky cost about 1.3 ms of CPU per poll,
 * `http.request` on a keep-alive agent about 0.2 ms, this about half of that.
 */
import net from 'node:net';
import tls from 'node:tls';
import type { HttpAnswer, HttpPost } from './http';
import { Http1Error, type Http1Response, Http1ResponseReader, requestHead } from './http1';

/** The Node entry's {@link HttpPost}, and a way to close its idle connections. */
export interface NodePost extends HttpPost {
  /** Closes the connections it keeps (the client's `close`). */
  destroy(): void;
}

/** Where a URL's requests go, read once per URL. */
interface Target {
  secure: boolean;
  host: string;
  port: number;
  /** The `host` header. */
  authority: string;
  /** The path and query. */
  path: string;
  /** Idle connections to this origin, the most recently used last. */
  idle: net.Socket[];
}

/** The error of a post that took longer than its `timeoutMs`. */
const timedOut = (ms: number) => new Error(`no answer within ${ms} ms`);

/**
 * Makes the {@link HttpPost} of one client, with its own connections: a held poll and a send
 * each take one, and a connection whose answer was read whole goes back to the idle list at
 * once, so the next poll reuses it. Idle connections are unref'd (they keep no process alive)
 * and dropped when the server closes them; a request that finds its reused connection closed
 * before any byte of an answer is sent again once on a new one (the keep-alive race every HTTP
 * client has).
 *
 * Requests are written at the end of the event-loop turn: every answer that arrived in this
 * turn is delivered before any client of the process writes its next request.
 */
export function createNodePost(): NodePost {
  const targets = new Map<string, Target>();
  const open = new Set<net.Socket>();

  function targetOf(url: string): Target {
    let target = targets.get(url);
    if (target === undefined) {
      const parsed = new URL(url);
      const secure = parsed.protocol === 'https:';
      if (!secure && parsed.protocol !== 'http:') {
        throw new TypeError(`not an http(s) URL: ${url}`);
      }
      const host = parsed.hostname.replace(/^\[(.*)\]$/, '$1');
      target = {
        secure,
        host,
        port: Number(parsed.port) || (secure ? 443 : 80),
        authority: parsed.host,
        path: `${parsed.pathname}${parsed.search}`,
        idle: [],
      };
      // A client posts to one or two URLs; keep the map from growing without bound anyway.
      if (targets.size >= 16) targets.clear();
      targets.set(url, target);
    }
    return target;
  }

  function connect(target: Target): net.Socket {
    const socket = target.secure
      ? tls.connect({
          host: target.host,
          port: target.port,
          servername: net.isIP(target.host) ? undefined : target.host,
          ALPNProtocols: ['http/1.1'],
        })
      : net.connect({ host: target.host, port: target.port });
    socket.setNoDelay(true);
    open.add(socket);
    // An idle connection the server closes leaves the list; errors while in use are the
    // request's (its own listener), and one while idle must not crash the process.
    socket.on('error', () => {});
    socket.once('close', () => {
      open.delete(socket);
      const at = target.idle.indexOf(socket);
      if (at !== -1) target.idle.splice(at, 1);
    });
    return socket;
  }

  function exchange(
    target: Target,
    head: string,
    body: string,
    signal: AbortSignal,
    reused: boolean,
  ): Promise<Http1Response | 'stale'> {
    return new Promise((resolve, reject) => {
      const kept = reused ? target.idle.pop() : undefined;
      const socket = kept ?? connect(target);
      socket.ref();
      const reader = new Http1ResponseReader();
      let received = false;
      const finish = (result: Http1Response | Http1Error | Error | 'stale') => {
        socket.off('data', onData);
        socket.off('end', onEnd);
        socket.off('close', onClose);
        socket.off('error', onClose);
        signal.removeEventListener('abort', onAbort);
        if (result instanceof Error || result === 'stale' || !result.reusable) socket.destroy();
        else {
          socket.unref();
          target.idle.push(socket);
        }
        if (result instanceof Error) reject(result);
        else resolve(result);
      };
      const onData = (chunk: Buffer) => {
        received = true;
        const result = reader.push(chunk);
        if (result !== undefined) finish(result);
      };
      // A kept connection the server closed before answering anything: not this request's
      // failure (it may never have reached the server).
      const stale = () => !received && kept !== undefined;
      const onEnd = () => finish(stale() ? 'stale' : reader.end());
      const onClose = (error?: unknown) => {
        if (stale()) return finish('stale');
        finish(error instanceof Error ? error : new Http1Error('the connection closed'));
      };
      const onAbort = () =>
        finish(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
      socket.on('data', onData);
      socket.on('end', onEnd);
      socket.on('close', onClose);
      socket.on('error', onClose);
      signal.addEventListener('abort', onAbort, { once: true });
      socket.write(head + body);
    });
  }

  const post: HttpPost = (url, body, headers, signal, timeoutMs) =>
    new Promise<HttpAnswer>((resolve, reject) => {
      setImmediate(async () => {
        if (signal.aborted) return reject(signal.reason);
        let timer: ReturnType<typeof setTimeout> | undefined;
        const timeout = new AbortController();
        const both = timeoutMs === undefined ? signal : AbortSignal.any([signal, timeout.signal]);
        if (timeoutMs !== undefined) {
          timer = setTimeout(() => timeout.abort(timedOut(timeoutMs)), timeoutMs);
        }
        try {
          const target = targetOf(url);
          const head = requestHead(target.path, target.authority, headers, Buffer.byteLength(body));
          if (head instanceof Error) throw head;
          let answer = await exchange(target, head, body, both, target.idle.length > 0);
          if (answer === 'stale') answer = await exchange(target, head, body, both, false);
          if (answer === 'stale') throw new Http1Error('the connection closed');
          resolve({
            status: answer.status,
            text: answer.text,
            retryAfter: answer.retryAfter,
          });
        } catch (error) {
          reject(error);
        } finally {
          clearTimeout(timer);
        }
      });
    });
  return Object.assign(post, {
    destroy() {
      for (const socket of open) socket.destroy();
      open.clear();
      targets.clear();
    },
  });
}
