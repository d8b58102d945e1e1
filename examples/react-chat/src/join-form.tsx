import { type FormEvent, useState } from 'react';
import type { Role } from './comet';

/** Asks for a name and a role. */
export function JoinForm(props: {
  name: string;
  role: Role;
  onJoin: (name: string, role: Role) => void;
}) {
  const [name, setName] = useState(props.name);
  const [role, setRole] = useState<Role>(props.role);
  const trimmed = name.trim();
  const submit = (event: FormEvent) => {
    event.preventDefault();
    if (trimmed) props.onJoin(trimmed, role);
  };
  return (
    <form className="join" data-testid="join-form" onSubmit={submit}>
      <label>
        Name
        <input
          data-testid="name-input"
          value={name}
          maxLength={40}
          autoComplete="nickname"
          onChange={(event) => setName(event.target.value)}
        />
      </label>
      <label>
        Role
        <select
          data-testid="role-select"
          value={role}
          onChange={(event) => setRole(event.target.value as Role)}
        >
          <option value="customer">Customer</option>
          <option value="agent">Agent</option>
        </select>
      </label>
      <button type="submit" data-testid="join" disabled={!trimmed}>
        Join
      </button>
    </form>
  );
}
