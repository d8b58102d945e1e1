import type { CometServer } from '@cometkit/server';

/** Options of {@link startDemo}. */
export interface StartDemoOptions {
  /**
   * The direct port; `0` picks a free one.
   * @default 3000
   */
  port?: number;
  /**
   * The port of the front that refuses WebSocket upgrades; `0` picks a free one.
   * @default 3001
   */
  frontPort?: number;
  /**
   * The interface both ports listen on.
   * @default '127.0.0.1'
   */
  host?: string;
}

/** A running demo. */
export interface Demo {
  /** `http://host:port`, with the real port (also when `0` was asked). */
  url: string;
  /** The same through the WebSocket-refusing front. */
  frontUrl: string;
  /** The comet server behind `/api/comet`. */
  comet: CometServer;
  /** Drains the comet server, then closes both ports and every connection. */
  close(): Promise<void>;
}

/** Starts the support chat demo (examples/CHAT.md). */
export function startDemo(options?: StartDemoOptions): Promise<Demo>;
