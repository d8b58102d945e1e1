import type { ConnectionState } from '@cometkit/angular';

/** Who is talking. */
export type Role = 'agent' | 'customer';

/** A chat message's data on `chat:{room}`, as the server publishes it. */
export interface ChatData {
  name: string;
  role: Role;
  text: string;
  sentAt: number;
}

/** A line of the chat list. */
export interface ChatLine extends ChatData {
  id: string;
}

/** A message's data on `typing:{room}`. */
export interface TypingData {
  name: string;
  role: Role;
  typing: boolean;
}

/** Who joined which room. */
export interface Member {
  room: string;
  name: string;
  role: Role;
}

/** The answer of `GET /api/chat/history`. */
export interface History {
  messages: { id: string; data: ChatData }[];
  cursor?: string;
}

const ROOM = /^[a-z0-9-]{1,40}$/;

/** The room, name and role from `?room=…&name=…&role=…`; `join` when name and role are both given. */
export function readQuery(search: string): {
  room: string;
  name: string;
  role: Role;
  join: boolean;
} {
  const params = new URLSearchParams(search);
  const room = params.get('room') ?? '';
  const name = (params.get('name') ?? '').trim().slice(0, 40);
  const role = params.get('role');
  return {
    room: ROOM.test(room) ? room : 'support',
    name,
    role: role === 'agent' ? 'agent' : 'customer',
    join: name !== '' && (role === 'agent' || role === 'customer'),
  };
}

/** The text of the `connection` badge, e.g. `connected · websocket`, `reconnecting (attempt 2)`. */
export function describeConnection(state: ConnectionState): string {
  switch (state.status) {
    case 'connected':
      return `connected · ${state.transport}`;
    case 'connecting':
      return `connecting · ${state.transport}`;
    case 'reconnecting':
      return `reconnecting (attempt ${state.attempt})`;
    case 'failed':
      return `failed: ${state.error.message}`;
    default:
      return state.status;
  }
}
