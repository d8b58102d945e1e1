import {
  Agent,
  createServer,
  request as httpRequest,
  type IncomingHttpHeaders,
  type OutgoingHttpHeaders,
} from 'node:http';
import { connect, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';

/** What a front does; every field can change at run time with `setOptions`. */
export interface FrontOptions {
  /** Base URLs of the instances behind the front (`http://127.0.0.1:port`), used in turn. */
  targets: string[];
  /**
   * Answers `400` to every WebSocket upgrade, like an AWS Classic Load Balancer in HTTP mode.
   * @default false
   */
  refuseUpgrades?: boolean;
  /**
   * Holds each response until it ends, then sends it whole, like a buffering proxy
   * (nginx `proxy_buffering on`): a stream's first event arrives only when the stream ends.
   * @default false
   */
  bufferResponses?: boolean;
  /**
   * Faults to inject, like a flaky path between clients and servers. Each request (and each
   * WebSocket upgrade) draws one fault with probability `rate`, picked evenly from `kinds`.
   * @default undefined (no faults)
   */
  faults?: FrontFaults;
}

/**
 * A fault of the front:
 * - `timeout`: the front answers `408` itself and never forwards the request (a proxy's
 *   timeout); an upgrade gets a `408` too.
 * - `lost-answer`: the request is forwarded and the server does its work, but the front throws
 *   the answer away and answers `504` (at the answer's end, or 100 ms into a long one): the
 *   client never learns what happened, e.g. that its send was published.
 * - `reset`: the request is forwarded, then the client's connection is destroyed halfway
 *   through the first chunk of the answer (mid-body, mid-stream); an upgraded connection is
 *   destroyed within 300 ms.
 */
export type FrontFault = 'timeout' | 'lost-answer' | 'reset';

/** See {@link FrontOptions.faults}. */
export interface FrontFaults {
  /** The probability, in [0, 1], that a request gets a fault. */
  rate: number;
  /** @default ['timeout', 'lost-answer', 'reset'] */
  kinds?: readonly FrontFault[];
  /** The random source; pass a seeded one for a repeatable sequence. @default Math.random */
  random?: () => number;
}

/** A running front from {@link createFront}. */
export interface Front {
  /** `http://127.0.0.1:<port>` */
  url: string;
  port: number;
  /** How many requests (and upgrades) went to each target, by target URL. */
  counts(): Map<string, number>;
  /** How many faults of each kind were injected. */
  faults(): Map<FrontFault, number>;
  /** Changes targets or behaviour for the next requests. */
  setOptions(options: Partial<FrontOptions>): void;
  /** Stops listening and destroys every connection, both sides. */
  close(): Promise<void>;
}

const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
  'te',
  'trailer',
]);

function endToEnd(headers: IncomingHttpHeaders): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined && !HOP_BY_HOP.has(name)) out[name] = value;
  }
  return out;
}

/**
 * A real HTTP proxy on a free loopback port: each request goes to the next target in turn
 * (round robin, no stickiness), WebSocket upgrades pass through (or get a `400`), and
 * responses can be buffered whole. For tests of what load balancers do to a client.
 */
export async function createFront(initial: FrontOptions): Promise<Front> {
  if (initial.targets.length === 0) throw new TypeError('createFront: give at least one target');
  let options: Required<Omit<FrontOptions, 'faults'>> & Pick<FrontOptions, 'faults'> = {
    refuseUpgrades: false,
    bufferResponses: false,
    ...initial,
  };
  let next = 0;
  const counts = new Map<string, number>();
  const sockets = new Set<Socket | Duplex>();
  const agent = new Agent({ keepAlive: true });

  const injected = new Map<FrontFault, number>();
  /** The fault for the next request, if it draws one. */
  const draw = (): FrontFault | undefined => {
    const faults = options.faults;
    if (!faults || faults.rate <= 0) return undefined;
    const random = faults.random ?? Math.random;
    if (random() >= faults.rate) return undefined;
    const kinds = faults.kinds ?? ['timeout', 'lost-answer', 'reset'];
    const fault = kinds[Math.floor(random() * kinds.length)];
    if (fault) injected.set(fault, (injected.get(fault) ?? 0) + 1);
    return fault;
  };

  const pick = (): URL => {
    const target = options.targets[next % options.targets.length] as string;
    next += 1;
    counts.set(target, (counts.get(target) ?? 0) + 1);
    return new URL(target);
  };

  const server = createServer((req, res) => {
    const fault = draw();
    if (fault === 'timeout') {
      req.resume();
      res.writeHead(408, { 'content-type': 'text/plain', connection: 'close' });
      res.end('request timeout');
      return;
    }
    const target = pick();
    const upstream = httpRequest({
      agent,
      host: target.hostname,
      port: target.port,
      method: req.method,
      path: req.url,
      headers: { ...endToEnd(req.headers), host: target.host },
    });
    upstream.on('response', (answer) => {
      const headers = endToEnd(answer.headers);
      // An instance that dies mid-answer (a held poll, a stream) cuts the client off too, as a
      // real proxy does: the client must not wait on a silent connection for its watchdog.
      answer.on('close', () => {
        if (!answer.complete && !res.writableEnded) res.destroy();
      });
      if (fault === 'lost-answer') {
        const lose = () => {
          clearTimeout(timer);
          if (res.headersSent) return;
          upstream.destroy();
          res.writeHead(504, { 'content-type': 'text/plain' });
          res.end('gateway timeout');
        };
        const timer = setTimeout(lose, 100);
        answer.on('end', lose);
        answer.resume();
        return;
      }
      if (fault === 'reset') {
        res.writeHead(answer.statusCode ?? 502, headers);
        answer.once('data', (chunk: Buffer) => {
          res.write(chunk.subarray(0, chunk.length >> 1));
          res.socket?.destroy();
          upstream.destroy();
        });
        return;
      }
      if (!options.bufferResponses) {
        res.writeHead(answer.statusCode ?? 502, headers);
        answer.pipe(res);
        return;
      }
      const chunks: Buffer[] = [];
      answer.on('data', (chunk: Buffer) => chunks.push(chunk));
      answer.on('end', () => {
        const body = Buffer.concat(chunks);
        res.writeHead(answer.statusCode ?? 502, {
          ...headers,
          'content-length': String(body.length),
        });
        res.end(body);
      });
    });
    upstream.on('error', () => {
      if (!res.headersSent) {
        res.writeHead(502, { 'content-type': 'text/plain' });
        res.end('bad gateway');
      } else {
        res.destroy();
      }
    });
    // A client that leaves takes its upstream request with it, as real proxies do.
    res.on('close', () => {
      if (!res.writableEnded) upstream.destroy();
    });
    req.pipe(upstream);
  });

  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });

  server.on('upgrade', (req, socket: Duplex, head: Buffer) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    const fault = draw();
    if (fault === 'timeout') {
      socket.end(
        'HTTP/1.1 408 Request Timeout\r\nContent-Type: text/plain\r\nContent-Length: 15\r\nConnection: close\r\n\r\nrequest timeout',
      );
      return;
    }
    if (fault) {
      const random = options.faults?.random ?? Math.random;
      const timer = setTimeout(() => socket.destroy(), Math.floor(random() * 300));
      socket.on('close', () => clearTimeout(timer));
    }
    if (options.refuseUpgrades) {
      socket.end(
        'HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: 11\r\nConnection: close\r\n\r\nBad Request',
      );
      return;
    }
    const target = pick();
    const upstream = connect(Number(target.port), target.hostname);
    sockets.add(upstream);
    upstream.on('close', () => {
      sockets.delete(upstream);
      socket.destroy();
    });
    socket.on('close', () => upstream.destroy());
    upstream.on('error', () => socket.destroy());
    upstream.on('connect', () => {
      let head0 = `${req.method} ${req.url} HTTP/1.1\r\n`;
      for (let index = 0; index < req.rawHeaders.length; index += 2) {
        head0 += `${req.rawHeaders[index]}: ${req.rawHeaders[index + 1]}\r\n`;
      }
      upstream.write(`${head0}\r\n`);
      if (head.length > 0) upstream.write(head);
      upstream.pipe(socket);
      socket.pipe(upstream);
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no TCP address');
  let closing: Promise<void> | undefined;

  return {
    url: `http://127.0.0.1:${address.port}`,
    port: address.port,
    counts: () => new Map(counts),
    faults: () => new Map(injected),
    setOptions(change) {
      options = { ...options, ...change };
      if (options.targets.length === 0) throw new TypeError('createFront: targets is empty');
    },
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const socket of sockets) socket.destroy();
        server.closeAllConnections();
        agent.destroy();
      });
      return closing;
    },
  };
}
