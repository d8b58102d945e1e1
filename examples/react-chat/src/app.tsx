// The React support chat's shell: the top bar (which UI, the status pill), then the join form
// or the room. The join rules and the connection report are the demo's shared ones.
import { useState, useSyncExternalStore } from 'react';
import { readQuery } from '../../shared/demo.js';
import { ChatRoom } from './chat-room';
import { connectionReport, type Role } from './comet';
import { JoinForm } from './join-form';

/** Who is chatting, and where. */
export interface Identity {
  room: string;
  name: string;
  role: Role;
}

/** The connection report: one external store, read with `useSyncExternalStore`. */
export function useConnectionReport() {
  return useSyncExternalStore(connectionReport.subscribe, connectionReport.getSnapshot);
}

/** `?room=…&name=…&role=…` prefill the form; with both name and role (and a good room) it joins. */
export function App() {
  const [query] = useState(() => readQuery(window.location.search));
  const [identity, setIdentity] = useState<Identity | undefined>(() =>
    query.join ? { room: query.room, name: query.name, role: query.role } : undefined,
  );
  const report = useConnectionReport();

  const join = (next: Identity) => {
    // A reload of this address joins again, so it catches up with what it missed.
    const here = new URL(window.location.href);
    for (const [key, value] of Object.entries(next)) here.searchParams.set(key, value);
    window.history.replaceState(null, '', here);
    setIdentity(next);
  };

  return (
    <>
      <header className="bar">
        <h1>
          Support chat{' '}
          <span className="flavour" data-testid="ui-label">
            React
          </span>
        </h1>
        <p
          className="connection"
          data-testid="connection"
          data-status={report.state.status}
          aria-live="polite"
        >
          {report.summary}
        </p>
      </header>
      <main>
        {identity ? (
          <ChatRoom {...identity} />
        ) : (
          <JoinForm
            name={query.name}
            role={query.role}
            room={query.room}
            problem={query.problem}
            onJoin={join}
          />
        )}
      </main>
    </>
  );
}
