import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { Duplex } from 'node:stream';

/** Anything with a request handler, e.g. a `CometServer`; `handleUpgrade` when it has one. */
export interface Handles {
  handle(req: IncomingMessage, res: import('node:http').ServerResponse): void;
  handleUpgrade?: (req: IncomingMessage, socket: Duplex, head: Buffer) => void;
  close?: () => Promise<void>;
}

/** Options of {@link startServer}. */
export interface StartServerOptions {
  /**
   * The port to listen on (to restart a server where clients expect it).
   * @default 0 (a free port)
   */
  port?: number;
}

/** A running loopback server from {@link startServer}. */
export interface StartedServer {
  /** `http://127.0.0.1:<port>` */
  url: string;
  port: number;
  /** The `node:http` server. */
  server: Server;
  /** Closes the comet server (drain), then the HTTP server and every open connection. */
  close(): Promise<void>;
}

/** Serves `comet.handle` on a loopback port (a free one by default). */
export async function startServer(
  comet: Handles,
  options: StartServerOptions = {},
): Promise<StartedServer> {
  const server = createServer((req, res) => comet.handle(req, res));
  if (comet.handleUpgrade) {
    const upgrade = comet.handleUpgrade;
    server.on('upgrade', (req, socket, head) => upgrade(req, socket, head));
  }
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => {
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
    server,
    close() {
      closing ??= (async () => {
        await comet.close?.();
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeAllConnections();
        });
      })();
      return closing;
    },
  };
}
