// The Angular room: the last lines (a rewind) then live ones, own sends shown pending until delivered, the
// typing line, the composer and the connection panel. It keeps the newest line in view.
import {
  afterRenderEffect,
  ChangeDetectionStrategy,
  Component,
  computed,
  DestroyRef,
  type ElementRef,
  Injector,
  inject,
  input,
  type OnInit,
  type Signal,
  signal,
  viewChild,
} from '@angular/core';
import { takeUntilDestroyed } from '@angular/core/rxjs-interop';
// biome-ignore lint/style/useImportType: a constructor parameter's type is its DI token (a value).
import { CometService } from '@cometkit/angular';
import {
  describeOnline,
  describeWait,
  HISTORY_LINES,
  rememberMember,
} from '../../../shared/demo.js';
import {
  type ChatData,
  type ChatLine,
  CONNECTION_REPORT,
  type Member,
  type TypingData,
} from './chat';

/** Send `typing: true` at most this often while the user types. */
const TYPING_EVERY_MS = 2_000;
/** Send `typing: false` after this long without a keystroke. */
const TYPING_IDLE_MS = 3_000;
/** Show someone as typing for this long after their last `typing: true`. */
const TYPING_SHOWN_MS = 4_000;
/** Closer than this to the end counts as "reading the newest". */
const NEAR_BOTTOM_PX = 40;

/** An own send the server has not confirmed yet; `id` once `send()` resolved. */
interface Pending {
  key: number;
  text: string;
  id?: string;
}

/** One room: its last lines, then live messages, the composer and the typing indicator. */
@Component({
  selector: 'chat-room',
  changeDetection: ChangeDetectionStrategy.OnPush,
  template: `
    <section class="chat" aria-label="Chat">
      <div class="conversation">
        <p class="room">
          Room <strong>{{ member().room }}</strong>, you are
          <strong>{{ member().name }} ({{ member().role }})</strong>
        </p>
        <p class="online" data-testid="online" aria-live="polite">{{ online() }}</p>
        <ol class="messages" data-testid="messages" #list (scroll)="scrolled()">
          @for (line of lines(); track line.id) {
            <li
              data-testid="message"
              class="message"
              [class]="'role-' + line.role"
              [class.mine]="isMine(line)"
            >
              <div class="head">
                <span class="name" data-testid="message-name">{{ line.name }}</span>
                <span class="badge">{{ line.role }}</span>
                <time [attr.datetime]="iso(line.sentAt)">{{ clock(line.sentAt) }}</time>
                @if (isMine(line)) {
                  <span class="status" data-testid="message-status" data-status="delivered">✓ delivered</span>
                }
              </div>
              <p class="text" data-testid="message-text">{{ line.text }}</p>
            </li>
          } @empty {
            @if (waiting().length === 0) {
              <li class="empty" data-testid="empty">No messages yet. Say hello!</li>
            }
          }
          @for (send of waiting(); track send.key) {
            <li data-testid="pending-message" class="message mine pending" [class]="'role-' + member().role">
              <div class="head">
                <span class="name" data-testid="message-name">{{ member().name }}</span>
                <span class="badge">{{ member().role }}</span>
                <span class="status" data-testid="message-status" data-status="pending">◌ pending</span>
              </div>
              <p class="text" data-testid="message-text">{{ send.text }}</p>
            </li>
          }
        </ol>
        <p class="typing" data-testid="typing" aria-live="polite">{{ typingText() }}</p>
        <form class="composer" autocomplete="off" (submit)="send($event)">
          <input
            data-testid="input"
            placeholder="Write a message, Enter sends"
            aria-label="Message"
            [value]="draft()"
            (input)="typed($event)"
          />
          <button data-testid="send" type="submit" [disabled]="draft().trim() === ''">Send</button>
        </form>
        <p class="error" data-testid="error" role="alert">{{ error() }}</p>
      </div>
      <aside class="panel" data-testid="connection-panel" aria-label="Connection">
        <h2>Connection</h2>
        <dl>
          <dt>Transport</dt>
          <dd data-testid="panel-transport">{{ report().transport ?? 'none yet' }}</dd>
          <dt>Why</dt>
          <dd data-testid="panel-why">{{ report().why ?? 'not connected yet' }}</dd>
          <dt>Long-poll wait</dt>
          <dd data-testid="panel-wait">{{ wait() }}</dd>
          <dt>Reconnects</dt>
          <dd data-testid="panel-reconnects">{{ reconnects() }}</dd>
          <dt>The client's decisions</dt>
          <dd>
            <ol data-testid="panel-events">
              @for (event of report().events; track event.id) {
                <li>{{ event.text }}</li>
              } @empty {
                <li class="none">none yet</li>
              }
            </ol>
          </dd>
        </dl>
      </aside>
    </section>
  `,
})
export class ChatRoomComponent implements OnInit {
  /** Who joined which room. */
  readonly member = input.required<Member>();

  readonly #destroyRef = inject(DestroyRef);
  readonly #injector = inject(Injector);
  /** Who is in the room (set in ngOnInit, once the room is known). */
  protected online: Signal<string> = signal('Online: nobody yet');

  protected readonly lines = signal<readonly ChatLine[]>([]);
  protected readonly draft = signal('');
  protected readonly error = signal('');
  protected readonly report = inject(CONNECTION_REPORT);
  protected readonly wait = computed(() => describeWait(this.report().waitMs));
  protected readonly reconnects = computed(() => {
    const { reconnects, reasons } = this.report();
    return reconnects === 0 ? '0' : `${reconnects}: ${reasons.join('; ')}`;
  });
  readonly #pending = signal<readonly Pending[]>([]);
  /** Own sends not on screen yet as messages. */
  protected readonly waiting = computed(() => {
    const shown = new Set(this.lines().map((line) => line.id));
    return this.#pending().filter((send) => send.id === undefined || !shown.has(send.id));
  });
  private readonly list = viewChild.required<ElementRef<HTMLElement>>('list');
  // Whether the reader is at the end (kept by the scroll handler), and an own line to show.
  #atEnd = true;
  #ownLine = false;
  #lastKey = 0;
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
    // Follow the newest line if the reader was there, or it is theirs.
    afterRenderEffect(() => {
      // Read to re-run on each new line or pending send.
      this.lines();
      this.waiting();
      const list = this.list().nativeElement;
      if (!this.#atEnd && !this.#ownLine) return;
      this.#ownLine = false;
      list.scrollTop = list.scrollHeight;
    });
    this.#destroyRef.onDestroy(() => {
      for (const timer of this.#typingTimers.values()) clearTimeout(timer);
      clearTimeout(this.#idleTimer);
    });
  }

  ngOnInit(): void {
    // Before the presence subscription starts: the server reads who this page is from it.
    rememberMember(this.member());
    const members = this.comet.presence(`chat:${this.member().room}`, { injector: this.#injector });
    this.online = computed(() => describeOnline(members()));
    this.#start();
  }

  protected isMine(line: ChatData): boolean {
    return line.name === this.member().name && line.role === this.member().role;
  }

  protected iso(sentAt: number | undefined): string | null {
    return typeof sentAt === 'number' ? new Date(sentAt).toISOString() : null;
  }

  protected clock(sentAt: number | undefined): string {
    return typeof sentAt === 'number'
      ? new Date(sentAt).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })
      : '';
  }

  protected scrolled(): void {
    const list = this.list().nativeElement;
    this.#atEnd = list.scrollHeight - list.scrollTop - list.clientHeight < NEAR_BOTTOM_PX;
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
    // Shown at once as pending: the client queues it while offline and sends it later.
    this.#lastKey += 1;
    const key = this.#lastKey;
    this.#ownLine = true;
    this.#pending.update((all) => [...all, { key, text }]);
    this.draft.set('');
    this.error.set('');
    try {
      const id = await this.comet.send(`chat:${room}`, { name, role, text });
      this.#pending.update((all) => all.map((send) => (send.key === key ? { ...send, id } : send)));
    } catch (error) {
      this.#pending.update((all) => all.filter((send) => send.key !== key));
      this.error.set(error instanceof Error ? error.message : String(error));
      // Give the text back so it can be fixed, unless something new was typed meanwhile.
      if (this.draft() === '') this.draft.set(text);
    }
  }

  #start(): void {
    const { room, name } = this.member();
    // The room's last lines from the server's history (a rewind), then live ones.
    this.comet
      .messages$<ChatData>(`chat:${room}`, { rewind: HISTORY_LINES })
      .pipe(takeUntilDestroyed(this.#destroyRef))
      .subscribe((message) => {
        // After a reset (the server lost our place) the topic starts again from the server's
        // history: a line already on screen comes again, and is shown once.
        if (message.id !== undefined && this.lines().some((line) => line.id === message.id)) return;
        const line = { id: message.id ?? `${Date.now()}-${Math.random()}`, ...message.data };
        if (this.isMine(line)) this.#ownLine = true;
        this.lines.update((lines) => [...lines, line]);
        // Confirmed sends that are on screen leave the pending list.
        this.#pending.update((all) => all.filter((send) => send.id !== line.id));
        this.#typing({ ...message.data, typing: false });
      });
    this.comet
      .topic$<TypingData>(`typing:${room}`)
      .pipe(takeUntilDestroyed(this.#destroyRef))
      .subscribe((typing) => {
        if (typing.name !== name) this.#typing(typing);
      });
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
