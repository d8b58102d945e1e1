// The Angular support chat's shell: the top bar (which UI, the status pill), then the join
// form or the room. The join rules and the connection report are the demo's shared ones.
import { ChangeDetectionStrategy, Component, inject, signal } from '@angular/core';
import { joinProblem, NAME_MAX, readQuery } from '../../../shared/demo.js';
import { CONNECTION_REPORT, type Member, type Role } from './chat';
import { ChatRoomComponent } from './chat-room.component';

/** The top bar, the join form, then the room. */
@Component({
  selector: 'chat-root',
  imports: [ChatRoomComponent],
  changeDetection: ChangeDetectionStrategy.OnPush,
  template: `
    <header class="bar">
      <h1>Support chat <span class="flavour" data-testid="ui-label">Angular</span></h1>
      <p
        class="connection"
        data-testid="connection"
        aria-live="polite"
        [attr.data-status]="report().state.status"
      >{{ report().summary }}</p>
    </header>
    <main>
      @if (member(); as member) {
        <chat-room [member]="member" />
      } @else {
        <form class="join" data-testid="join-form" novalidate (submit)="join($event)">
          <h2>Join the chat</h2>
          <label>
            Your name
            <input
              data-testid="name-input"
              [attr.maxlength]="nameMax"
              autocomplete="nickname"
              [attr.aria-invalid]="problem()?.field === 'name'"
              [value]="name()"
              (input)="name.set(field($event))"
            />
          </label>
          <label>
            You are
            <select data-testid="role-select" [value]="role()" (change)="role.set(asRole(field($event)))">
              <option value="customer">a customer</option>
              <option value="agent">an agent</option>
            </select>
          </label>
          <label>
            Room
            <input
              data-testid="room-input"
              maxlength="60"
              [attr.aria-invalid]="problem()?.field === 'room'"
              [value]="room()"
              (input)="room.set(field($event))"
            />
            <span class="hint">1 to 40 of a-z, 0-9 and -</span>
          </label>
          <button data-testid="join" type="submit">Join</button>
          <p class="error" data-testid="join-error" role="alert">{{ problem()?.message }}</p>
        </form>
      }
    </main>
  `,
})
export class AppComponent {
  readonly #query = readQuery(globalThis.location?.search ?? '');
  // Injected here, at start, so the report hears the client's first decisions.
  protected readonly report = inject(CONNECTION_REPORT);
  protected readonly nameMax = NAME_MAX;
  protected readonly name = signal(this.#query.name);
  protected readonly role = signal<Role>(this.#query.role);
  protected readonly room = signal(this.#query.room);
  protected readonly problem = signal<{ field: string; message: string } | undefined>(
    this.#query.problem ? { field: 'room', message: this.#query.problem } : undefined,
  );
  protected readonly member = signal<Member | undefined>(
    this.#query.join
      ? { room: this.#query.room, name: this.#query.name, role: this.#query.role }
      : undefined,
  );

  protected join(event: Event): void {
    event.preventDefault();
    const next = {
      name: this.name().trim().slice(0, NAME_MAX),
      role: this.role(),
      room: this.room().trim(),
    };
    const problem = joinProblem(next);
    this.problem.set(problem);
    if (problem) return;
    // A reload of this address joins again, so it catches up with what it missed.
    const here = new URL(globalThis.location.href);
    for (const [key, value] of Object.entries(next)) here.searchParams.set(key, value);
    globalThis.history.replaceState(null, '', here);
    this.member.set(next);
  }

  protected field(event: Event): string {
    return (event.target as HTMLInputElement | HTMLSelectElement).value;
  }

  protected asRole(value: string): Role {
    return value === 'agent' ? 'agent' : 'customer';
  }
}
