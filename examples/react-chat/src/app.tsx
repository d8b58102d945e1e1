import { useState } from 'react';
import { ChatRoom } from './chat-room';
import type { Role } from './comet';
import { JoinForm } from './join-form';

/** Who is chatting, and where. */
export interface Identity {
  room: string;
  name: string;
  role: Role;
}

const ROOM = /^[a-z0-9-]{1,40}$/;

/** `?room=…&name=…&role=…` prefill the form; with both name and role the page joins at once. */
function fromQuery(search: string): { room: string; name: string; role: Role | undefined } {
  const params = new URLSearchParams(search);
  const room = params.get('room') ?? '';
  const role = params.get('role');
  return {
    room: ROOM.test(room) ? room : 'support',
    name: (params.get('name') ?? '').trim().slice(0, 40),
    role: role === 'agent' || role === 'customer' ? role : undefined,
  };
}

/** The support chat: the join form, then the room. */
export function App() {
  const [query] = useState(() => fromQuery(window.location.search));
  const [identity, setIdentity] = useState<Identity | undefined>(() =>
    query.name && query.role ? { room: query.room, name: query.name, role: query.role } : undefined,
  );
  return (
    <main className="chat">
      <header className="chat-header">
        <h1>Support chat</h1>
        {identity && (
          <p className="who">
            {identity.name} ({identity.role}) in <strong>{identity.room}</strong>
          </p>
        )}
      </header>
      {identity ? (
        <ChatRoom {...identity} />
      ) : (
        <JoinForm
          name={query.name}
          role={query.role ?? 'customer'}
          onJoin={(name, role) => setIdentity({ room: query.room, name, role })}
        />
      )}
    </main>
  );
}
