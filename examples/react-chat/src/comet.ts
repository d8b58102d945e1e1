import { createSharedCometClient } from '@cometkit/core/share';
import { createConnectionReport, memberHeaders } from '../../shared/demo.js';

/**
 * A chat line (see examples/CHAT.md). One type serves both directions of `chat:{room}`: a UI
 * sends it without `sentAt`, the server publishes it with.
 */
export interface ChatLine {
  name: string;
  role: Role;
  text: string;
  /** Milliseconds since the epoch, set by the server. */
  sentAt?: number;
}

/** A typing notice on `typing:{room}`. */
export interface Typing {
  name: string;
  role: Role;
  typing: boolean;
}

export type Role = 'agent' | 'customer';

/** The topic map: every `chat:*` topic carries chat lines, every `typing:*` typing notices. */
export type ChatTopics = {
  [K in `chat:${string}`]: ChatLine;
} & {
  [K in `typing:${string}`]: Typing;
};

/**
 * The page's one client; the provider gets it, the hooks are typed by it. Shared: the tabs of
 * this browser with the same member hold one connection between them.
 */
export const client = createSharedCometClient<ChatTopics>({
  url: '/api/comet',
  headers: memberHeaders,
});

/** What the connection panel shows, following the client from its creation on. */
export const connectionReport = createConnectionReport(client);

declare module '@cometkit/react' {
  interface Register {
    client: typeof client;
  }
}
