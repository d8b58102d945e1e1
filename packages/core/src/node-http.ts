/**
 * The Node entry point's {@link HttpPost}: polls and sends written straight to keep-alive TCP
 * (or TLS) connections, the answer read by a small HTTP/1.1 reader (`http1.ts`), with no
 * `http.request`, agent, streams, ky, `Request` or `Response` in between. Measured with 1 000
 * clients in one process (bench/PEERS.md): fetch and ky cost about 1.3 ms of CPU per poll,
 * `http.request` on a keep-alive agent about 0.2 ms, this about half of that.
 */
import net from 'node:net';
import tls from 'node:tls';
import type { CometEnvironment } from './environment';
import type { HttpAnswer, HttpPost } from './http';
import { Http1Error, type Http1Response, Http1ResponseReader, requestHead } from './http1';

/** The immediates {@link nodeTimers} made, to tell them from timeouts when cleared. */
const immediates = new WeakSet<object>();

/**
 * The Node entry's timers, where 0 ms is `setImmediate` (Node's `setTimeout(0)` waits 1 ms, and
 * runs before the turn's I/O): the re-poll after an answer then goes out right after the
 * answers that came in the same turn were delivered.
 */
export const nodeTimers: Pick<CometEnvironment, 'setTimeout' | 'clearTimeout' | 'repollAfterTurn'> =
  {
    repollAfterTurn: true,
    setTimeout(callback, ms) {
      if (ms > 0) return setTimeout(callback, ms);
      const immediate = setImmediate(callback);
      immediates.add(immediate);
      return immediate;
    },
    clearTimeout(handle) {
      // clearImmediate must never see a Timeout (it would miscount Node's pending immediates).
      if (immediates.has(handle as object)) clearImmediate(handle as NodeJS.Immediate);
      else clearTimeout(handle as NodeJS.Timeout);
    },
  };

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
  idle: Carrying[];
}

/** What a connection's listeners hand their events to: the request it carries. */
interface Exchange {
  data(chunk: Buffer): void;
  end(): void;
  closed(error: unknown): void;
}

/** A connection and the request it carries now (undefined while idle). */
interface Carrying {
  readonly socket: net.Socket;
  exchange: Exchange | undefined;
}

/** Where plain-TCP connections read into: one for the process (its reads run one at a time). */
const READ_BUFFER = Buffer.allocUnsafe(64 * 1024);

/** `size` bytes were read into {@link READ_BUFFER} for the connection of `state`. */
function onRead(state: Carrying, size: number): boolean {
  // The reader copies what it keeps past this call.
  received(state, READ_BUFFER.subarray(0, size));
  return true;
}

/** Bytes came on a connection: its request's, or, while idle, a reason to close it. */
function received(state: Carrying, chunk: Buffer): void {
  if (state.exchange !== undefined) state.exchange.data(chunk);
  // Bytes no request asked for: the next answer on this connection could not be trusted.
  else state.socket.destroy();
}

/** The error of a post that took longer than its `timeoutMs`. */
const timedOut = (ms: number) => new Error(`no answer within ${ms} ms`);

/**
 * Makes the {@link HttpPost} of one client, with its own connections: a held poll and a send
 * each take one, and a connection whose answer was read whole goes back to the idle list at
 * once, so the next poll reuses it. Idle connections are dropped when the server closes them
 * (or sends bytes nobody asked for); a request that finds its reused connection closed before
 * any byte of an answer is sent again once on a new one (the keep-alive race every HTTP client
 * has). A request is written when it is made (the client's re-poll itself waits for a 0 ms timer,
 * {@link nodeTimers}, so that every answer of the turn is delivered first).
 *
 * An answer is read on the path from a publish to a callback, which after an idle moment runs
 * cold: every builtin it touches then costs microseconds (a Node stream's `data` event, an
 * `EventTarget` listener removed, a `ref()`), so the path touches few. Plain-TCP connections
 * read into one shared buffer (`onread`) with no stream in between; each connection's listeners
 * are added once, not per request; the answer is handed on by callbacks, with one promise per
 * post; a request's abort listener is left on its signal (both die with the request).
 * Connections are unref'd from the start: an idle one keeps no process alive, and a request in
 * flight keeps it alive by the timer its caller runs for it (the client has one for every
 * request: a poll's watchdog, a send's timeout). Measured end to end with one client and one
 * message every 20 ms (bench/PEERS.md): about 0.2 ms less than with a `data` listener per
 * request and an answer read through promises.
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

  function connect(target: Target): Carrying {
    const socket = target.secure
      ? tls.connect({
          host: target.host,
          port: target.port,
          servername: net.isIP(target.host) ? undefined : target.host,
          ALPNProtocols: ['http/1.1'],
        })
      : net.connect({
          host: target.host,
          port: target.port,
          // Read into one buffer shared by every plain connection of the process, handed
          // straight to the reader: no stream, chunk or `data` event per read.
          onread: { buffer: READ_BUFFER, callback: (size) => onRead(state, size) },
        });
    // The listeners stay for the connection's life and hand events to the request it carries
    // (none while idle), instead of four added and removed per request.
    const state: Carrying = { socket, exchange: undefined };
    socket.setNoDelay(true);
    socket.unref();
    open.add(socket);
    if (target.secure) socket.on('data', (chunk: Buffer) => received(state, chunk));
    socket.on('end', () => state.exchange?.end());
    // An error while idle must not crash the process; one while in use is the request's.
    socket.on('error', (error) => state.exchange?.closed(error));
    socket.once('close', () => {
      state.exchange?.closed(undefined);
      open.delete(socket);
      // A connection the server closed while idle leaves the list.
      const at = target.idle.indexOf(state);
      if (at !== -1) target.idle.splice(at, 1);
    });
    return state;
  }

  /**
   * Writes one request on a kept connection (`reused`) or a new one and reads its answer;
   * `done` is called once, with the answer, an error, or `'stale'`: a kept connection the
   * server closed before answering anything (not this request's failure: it may never have
   * reached the server, and is sent again once on a new connection).
   */
  function exchange(
    target: Target,
    request: string,
    signal: AbortSignal,
    reused: boolean,
    done: (result: Http1Response | Error | 'stale') => void,
  ): void {
    const kept = reused ? target.idle.pop() : undefined;
    const state = kept ?? connect(target);
    const socket = state.socket;
    const reader = new Http1ResponseReader();
    let received = false;
    const finish = (result: Http1Response | Error | 'stale') => {
      if (state.exchange !== current) return;
      state.exchange = undefined;
      // The abort listener stays (the signal is this request's, and dies with it): removing a
      // listener from Node's EventTarget costs about 50 µs when the code runs cold, as the read
      // of an answer after an idle moment does. A later abort finds the exchange over.
      if (result instanceof Error || result === 'stale' || !result.reusable) socket.destroy();
      else target.idle.push(state);
      done(result);
    };
    const stale = () => !received && kept !== undefined;
    const current: Exchange = {
      data(chunk) {
        received = true;
        const result = reader.push(chunk);
        if (result !== undefined) finish(result);
      },
      end: () => finish(stale() ? 'stale' : reader.end()),
      closed(error) {
        if (stale()) return finish('stale');
        finish(error instanceof Error ? error : new Http1Error('the connection closed'));
      },
    };
    const onAbort = () =>
      finish(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
    state.exchange = current;
    signal.addEventListener('abort', onAbort, { once: true });
    socket.write(request);
  }

  const post: HttpPost = (url, body, headers, signal, timeoutMs) =>
    new Promise<HttpAnswer>((resolve, reject) => {
      if (signal.aborted) return reject(signal.reason);
      let timer: ReturnType<typeof setTimeout> | undefined;
      let both = signal;
      // A poll has no timeout of its own (its watchdog aborts it): no second controller.
      if (timeoutMs !== undefined) {
        const timeout = new AbortController();
        both = AbortSignal.any([signal, timeout.signal]);
        timer = setTimeout(() => timeout.abort(timedOut(timeoutMs)), timeoutMs);
      }
      // Callbacks, not promises, from the socket to the answer: one promise per post.
      const done = (result: Http1Response | Error | 'stale') => {
        if (timer !== undefined) clearTimeout(timer);
        if (result === 'stale') reject(new Http1Error('the connection closed'));
        else if (result instanceof Error) reject(result);
        else resolve({ status: result.status, text: result.text, retryAfter: result.retryAfter });
      };
      let target: Target;
      let request: string;
      try {
        target = targetOf(url);
        const head = requestHead(target.path, target.authority, headers, Buffer.byteLength(body));
        if (head instanceof Error) throw head;
        request = head + body;
      } catch (error) {
        return done(error as Error);
      }
      exchange(target, request, both, target.idle.length > 0, (result) => {
        if (result === 'stale') exchange(target, request, both, false, done);
        else done(result);
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
