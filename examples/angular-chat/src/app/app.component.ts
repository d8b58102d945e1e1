import { ChangeDetectionStrategy, Component, signal } from '@angular/core';
import { type Member, type Role, readQuery } from './chat';
import { ChatRoomComponent } from './chat-room.component';

/** The join form, then the room. */
@Component({
  selector: 'chat-root',
  imports: [ChatRoomComponent],
  changeDetection: ChangeDetectionStrategy.OnPush,
  template: `
    <h1>Support chat <small>Angular</small></h1>
    @if (member(); as member) {
      <chat-room [member]="member" />
    } @else {
      <form data-testid="join-form" (submit)="join($event)">
        <label>
          Name
          <input
            data-testid="name-input"
            maxlength="40"
            autocomplete="nickname"
            [value]="name()"
            (input)="name.set(field($event))"
          />
        </label>
        <label>
          Role
          <select data-testid="role-select" [value]="role()" (change)="role.set(asRole(field($event)))">
            <option value="customer">customer</option>
            <option value="agent">agent</option>
          </select>
        </label>
        <button data-testid="join" type="submit" [disabled]="name().trim() === ''">Join</button>
      </form>
    }
  `,
})
export class AppComponent {
  readonly #query = readQuery(globalThis.location?.search ?? '');
  protected readonly name = signal(this.#query.name);
  protected readonly role = signal<Role>(this.#query.role);
  protected readonly member = signal<Member | undefined>(
    this.#query.join
      ? { room: this.#query.room, name: this.#query.name, role: this.#query.role }
      : undefined,
  );

  protected join(event: Event): void {
    event.preventDefault();
    const name = this.name().trim();
    if (name === '') return;
    this.member.set({ room: this.#query.room, name, role: this.role() });
  }

  protected field(event: Event): string {
    return (event.target as HTMLInputElement | HTMLSelectElement).value;
  }

  protected asRole(value: string): Role {
    return value === 'agent' ? 'agent' : 'customer';
  }
}
