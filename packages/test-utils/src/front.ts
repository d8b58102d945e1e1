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
}

/** A running front from {@link createFront}. */
export interface Front {
  /** `http://127.0.0.1:<port>` */
  url: string;
  port: number;
  /** How many requests (and upgrades) went to each target, by target URL. */
  counts(): Map<string, number>;
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
  let options: Required<FrontOptions> = {
    refuseUpgrades: false,
    bufferResponses: false,
    ...initial,
  };
  let next = 0;
  const counts = new Map<string, number>();
  const sockets = new Set<Socket | Duplex>();
  const agent = new Agent({ keepAlive: true });

  const pick = (): URL => {
    const target = options.targets[next % options.targets.length] as string;
    next += 1;
    counts.set(target, (counts.get(target) ?? 0) + 1);
    return new URL(target);
  };

  const server = createServer((req, res) => {
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
