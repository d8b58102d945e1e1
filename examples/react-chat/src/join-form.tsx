// The React join form: name, role and room, with the shared rules' error shown on Join.
import { type FormEvent, useState } from 'react';
import { joinProblem, NAME_MAX } from '../../shared/demo.js';
import type { Identity } from './app';
import type { Role } from './comet';

/** Asks for a name, a role and a room; says what is wrong instead of joining. */
export function JoinForm(props: {
  name: string;
  role: Role;
  room: string;
  /** A problem with the address's room, shown from the start. */
  problem: string | undefined;
  onJoin: (identity: Identity) => void;
}) {
  const [name, setName] = useState(props.name);
  const [role, setRole] = useState<Role>(props.role);
  const [room, setRoom] = useState(props.room);
  const [problem, setProblem] = useState<{ field: string; message: string } | undefined>(
    props.problem ? { field: 'room', message: props.problem } : undefined,
  );

  const submit = (event: FormEvent) => {
    event.preventDefault();
    const next = { name: name.trim().slice(0, NAME_MAX), role, room: room.trim() };
    const found = joinProblem(next);
    setProblem(found);
    if (!found) props.onJoin(next);
  };

  return (
    <form className="join" data-testid="join-form" onSubmit={submit} noValidate>
      <h2>Join the chat</h2>
      <label>
        Your name
        <input
          data-testid="name-input"
          value={name}
          maxLength={NAME_MAX}
          autoComplete="nickname"
          aria-invalid={problem?.field === 'name'}
          onChange={(event) => setName(event.target.value)}
        />
      </label>
      <label>
        You are
        <select
          data-testid="role-select"
          value={role}
          onChange={(event) => setRole(event.target.value as Role)}
        >
          <option value="customer">a customer</option>
          <option value="agent">an agent</option>
        </select>
      </label>
      <label>
        Room
        <input
          data-testid="room-input"
          value={room}
          maxLength={60}
          aria-invalid={problem?.field === 'room'}
          onChange={(event) => setRoom(event.target.value)}
        />
        <span className="hint">1 to 40 of a-z, 0-9 and -</span>
      </label>
      <button type="submit" data-testid="join">
        Join
      </button>
      <p className="error" data-testid="join-error" role="alert">
        {problem?.message}
      </p>
    </form>
  );
}
