import { createCometClient } from '@cometkit/core';
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

/** The page's one client; the provider gets it, the hooks are typed by it. */
export const client = createCometClient<ChatTopics>({ url: '/api/comet', headers: memberHeaders });

/** What the connection panel shows, following the client from its creation on. */
export const connectionReport = createConnectionReport(client);

declare module '@cometkit/react' {
  interface Register {
    client: typeof client;
  }
}

/** The answer of `GET /api/chat/history`. */
export interface History {
  messages: { id: string; data: ChatLine }[];
  cursor: string;
}

/** The last chat lines of `room` and the position after them, to subscribe from. */
export async function fetchHistory(room: string, signal: AbortSignal): Promise<History> {
  const response = await fetch(`/api/chat/history?room=${encodeURIComponent(room)}`, { signal });
  if (!response.ok) throw new Error(`history: the server answered ${response.status}`);
  return (await response.json()) as History;
}
