import {
  ChangeDetectionStrategy,
  Component,
  computed,
  DestroyRef,
  inject,
  input,
  type OnInit,
  signal,
} from '@angular/core';
import { takeUntilDestroyed } from '@angular/core/rxjs-interop';
// biome-ignore lint/style/useImportType: a constructor parameter's type is its DI token (a value).
import { CometService } from '@cometkit/angular';
import {
  type ChatData,
  type ChatLine,
  describeConnection,
  type History,
  type Member,
  type TypingData,
} from './chat';

/** Send `typing: true` at most this often while the user types. */
const TYPING_EVERY_MS = 2_000;
/** Send `typing: false` after this long without a keystroke. */
const TYPING_IDLE_MS = 3_000;
/** Show someone as typing for this long after their last `typing: true`. */
const TYPING_SHOWN_MS = 4_000;

/** One room: history, then live messages, the composer and the typing indicator. */
@Component({
  selector: 'chat-room',
  changeDetection: ChangeDetectionStrategy.OnPush,
  template: `
    <p class="connection" data-testid="connection">{{ connection() }}</p>
    <p class="room">Room <b>{{ member().room }}</b> as {{ member().name }} ({{ member().role }})</p>
    <ul class="messages" data-testid="messages">
      @for (line of lines(); track line.id) {
        <li data-testid="message" class="message" [class]="'role-' + line.role">
          <span class="name" data-testid="message-name">{{ line.name }}</span>
          <span class="text" data-testid="message-text">{{ line.text }}</span>
        </li>
      }
    </ul>
    <p class="typing" data-testid="typing">{{ typingText() }}</p>
    <form class="composer" (submit)="send($event)">
      <input
        data-testid="input"
        placeholder="Write a message"
        autocomplete="off"
        [value]="draft()"
        (input)="typed($event)"
      />
      <button data-testid="send" type="submit" [disabled]="draft().trim() === ''">Send</button>
    </form>
    <p class="error" data-testid="error">{{ error() }}</p>
  `,
})
export class ChatRoomComponent implements OnInit {
  /** Who joined which room. */
  readonly member = input.required<Member>();

  readonly #destroyRef = inject(DestroyRef);

  protected readonly lines = signal<readonly ChatLine[]>([]);
  protected readonly draft = signal('');
  protected readonly error = signal('');
  protected readonly connection = computed(() => describeConnection(this.comet.state()));
  /** Name → role of those typing now; entries leave after TYPING_SHOWN_MS. */
  readonly #typists = signal<ReadonlyMap<string, TypingData>>(new Map());
  protected readonly typingText = computed(() => {
    const names = [...this.#typists().keys()];
    if (names.length === 0) return '';
    return `${names.join(', ')} ${names.length === 1 ? 'is' : 'are'} typing…`;
  });

  readonly #typingTimers = new Map<string, ReturnType<typeof setTimeout>>();
  #lastTypingSent = 0;
  #idleTimer: ReturnType<typeof setTimeout> | undefined;

  // Constructor injection on purpose (the rest uses `inject()`): the AOT build checks that
  // `CometService`, provided by a factory without decorators, injects by type.
  constructor(private readonly comet: CometService) {
    this.#destroyRef.onDestroy(() => {
      for (const timer of this.#typingTimers.values()) clearTimeout(timer);
      clearTimeout(this.#idleTimer);
    });
  }

  ngOnInit(): void {
    void this.#start();
  }

  protected typed(event: Event): void {
    this.draft.set((event.target as HTMLInputElement).value);
    const now = Date.now();
    if (now - this.#lastTypingSent >= TYPING_EVERY_MS) {
      this.#lastTypingSent = now;
      this.#sendTyping(true);
    }
    clearTimeout(this.#idleTimer);
    this.#idleTimer = setTimeout(() => this.#stopTyping(), TYPING_IDLE_MS);
  }

  protected async send(event: Event): Promise<void> {
    event.preventDefault();
    const text = this.draft();
    if (text.trim() === '') return;
    const { room, name, role } = this.member();
    this.#stopTyping();
    try {
      await this.comet.send(`chat:${room}`, { name, role, text });
      this.error.set('');
      // Keep what the user typed meanwhile; clear only what was sent.
      if (this.draft() === text) this.draft.set('');
    } catch (error) {
      this.error.set(error instanceof Error ? error.message : String(error));
    }
  }

  async #start(): Promise<void> {
    const { room, name } = this.member();
    const history = await this.#loadHistory(room);
    this.lines.set(history.messages.map((message) => ({ id: message.id, ...message.data })));
    this.comet
      .messages$<ChatData>(`chat:${room}`, history.cursor ? { cursor: history.cursor } : undefined)
      .pipe(takeUntilDestroyed(this.#destroyRef))
      .subscribe((message) => {
        const line = { id: message.id ?? `${Date.now()}-${Math.random()}`, ...message.data };
        this.lines.update((lines) => [...lines, line]);
        this.#typing({ ...message.data, typing: false });
      });
    this.comet
      .topic$<TypingData>(`typing:${room}`)
      .pipe(takeUntilDestroyed(this.#destroyRef))
      .subscribe((typing) => {
        if (typing.name !== name) this.#typing(typing);
      });
  }

  async #loadHistory(room: string): Promise<History> {
    try {
      const response = await fetch(`/api/chat/history?room=${encodeURIComponent(room)}`);
      if (!response.ok) throw new Error(`history: HTTP ${response.status}`);
      return (await response.json()) as History;
    } catch (error) {
      // Without history the room still works live, from the server's current position.
      this.error.set(error instanceof Error ? error.message : String(error));
      return { messages: [] };
    }
  }

  #typing(typing: TypingData): void {
    clearTimeout(this.#typingTimers.get(typing.name));
    this.#typingTimers.delete(typing.name);
    const next = new Map(this.#typists());
    if (typing.typing) {
      next.set(typing.name, typing);
      this.#typingTimers.set(
        typing.name,
        setTimeout(() => this.#typing({ ...typing, typing: false }), TYPING_SHOWN_MS),
      );
    } else if (!next.delete(typing.name)) {
      return;
    }
    this.#typists.set(next);
  }

  #stopTyping(): void {
    clearTimeout(this.#idleTimer);
    this.#idleTimer = undefined;
    if (this.#lastTypingSent === 0) return;
    this.#lastTypingSent = 0;
    this.#sendTyping(false);
  }

  #sendTyping(typing: boolean): void {
    const { room, name, role } = this.member();
    // Typing is best effort: a lost one only hides an indicator.
    this.comet.send(`typing:${room}`, { name, role, typing }).catch(() => {});
  }
}
