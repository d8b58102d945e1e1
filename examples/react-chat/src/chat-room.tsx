// The React room: the last lines (a rewind) then live ones, own sends shown pending until delivered, the
// typing line, the composer and the connection panel. It keeps the newest line in view.
import { usePresence, useSend, useTopicMessages } from '@cometkit/react';
import { type FormEvent, useEffect, useLayoutEffect, useMemo, useRef, useState } from 'react';
import { describeOnline, describeWait, HISTORY_LINES, rememberMember } from '../../shared/demo.js';
import { type Identity, useConnectionReport } from './app';
import type { ChatLine } from './comet';
import { useTyping } from './use-typing';

/** Lines kept on screen; older ones scroll away for good. */
const MAX_LINES = 200;
/** Closer than this to the end counts as "reading the newest". */
const NEAR_BOTTOM_PX = 40;

interface Line {
  id: string | undefined;
  data: ChatLine;
}

/** An own send the server has not confirmed yet; `id` once `send()` resolved. */
interface Pending {
  key: number;
  text: string;
  id?: string;
}

/** The room: connection state, the last lines then live ones, who is typing, the composer. */
export function ChatRoom({ room, name, role }: Identity) {
  // Before the presence subscription starts: the server reads who this page is from it.
  useMemo(() => rememberMember({ name, role }), [name, role]);
  const online = usePresence(`chat:${room}`);
  // The room's last lines from the server's history (a rewind), then live ones, once each.
  const messages = useTopicMessages(`chat:${room}`, { rewind: HISTORY_LINES, keep: MAX_LINES });
  // After a reset (the server lost our place) the topic starts again from the server's
  // history: lines already on screen come again, and are shown once.
  const lines = useMemo(() => {
    const seen = new Set<string>();
    const unique: Line[] = [];
    for (const { id, data } of messages) {
      if (id !== undefined && seen.has(id)) continue;
      if (id !== undefined) seen.add(id);
      unique.push({ id, data });
    }
    return unique;
  }, [messages]);
  const [pending, setPending] = useState<Pending[]>([]);
  const list = useRef<HTMLOListElement>(null);
  // Whether the reader is at the end (kept by the scroll handler), and an own send to show.
  const atEnd = useRef(true);
  const ownSend = useRef(false);
  // The newest line followed so far: an own line arriving (from another tab too) is followed.
  const newestId = useRef<string | undefined>(undefined);

  // A confirmed send leaves the pending list once its message is on screen.
  const shownIds = new Set(lines.map((line) => line.id));
  const waiting = pending.filter((p) => p.id === undefined || !shownIds.has(p.id));

  // After each render with new lines: follow the newest if the reader was there, or it is ours.
  const newest = lines.at(-1);
  // biome-ignore lint/correctness/useExhaustiveDependencies: runs when what is listed changes.
  useLayoutEffect(() => {
    if (newest && newest.id !== newestId.current) {
      newestId.current = newest.id;
      if (newest.data.name === name && newest.data.role === role) ownSend.current = true;
    }
    const element = list.current;
    if (!element || !(atEnd.current || ownSend.current)) return;
    ownSend.current = false;
    element.scrollTop = element.scrollHeight;
  }, [newest, waiting.length]);

  const { typingNames, notifyTyping, stopTyping } = useTyping(room, name, role);

  const lastKey = useRef(0);
  const sending = (text: string) => {
    lastKey.current += 1;
    const key = lastKey.current;
    ownSend.current = true;
    setPending((all) => [...all, { key, text }]);
    return {
      // `undefined` only from a server of the original design (this example's has ids).
      delivered: (id: string | undefined) =>
        setPending((all) => all.map((p) => (p.key === key ? { ...p, id } : p))),
      failed: () => setPending((all) => all.filter((p) => p.key !== key)),
    };
  };
  // Drop confirmed sends that are on screen, so the pending list does not grow.
  useEffect(() => {
    if (waiting.length !== pending.length) setPending(waiting);
  });

  return (
    <section className="chat" aria-label="Chat">
      <div className="conversation">
        <p className="room">
          Room <strong>{room}</strong>, you are{' '}
          <strong>
            {name} ({role})
          </strong>
        </p>
        <p className="online" data-testid="online" aria-live="polite">
          {describeOnline(online)}
        </p>
        <ol
          className="messages"
          data-testid="messages"
          ref={list}
          onScroll={(event) => {
            const e = event.currentTarget;
            atEnd.current = e.scrollHeight - e.scrollTop - e.clientHeight < NEAR_BOTTOM_PX;
          }}
        >
          {lines.length === 0 && waiting.length === 0 && (
            <li className="empty" data-testid="empty">
              No messages yet. Say hello!
            </li>
          )}
          {lines.map((line, index) => (
            <Message
              key={line.id ?? `legacy-${index}`}
              data={line.data}
              mine={line.data.name === name && line.data.role === role}
              status="delivered"
            />
          ))}
          {waiting.map((p) => (
            <Message
              key={`pending-${p.key}`}
              data={{ name, role, text: p.text }}
              mine
              status="pending"
            />
          ))}
        </ol>
        <p className="typing" data-testid="typing" aria-live="polite">
          {typingNames.length === 0
            ? ''
            : `${typingNames.join(', ')} ${typingNames.length === 1 ? 'is' : 'are'} typing…`}
        </p>
        <Composer
          draft={(text) => ({ name, role, text })}
          room={room}
          onInput={notifyTyping}
          onSending={(text) => {
            stopTyping();
            return sending(text);
          }}
        />
      </div>
      <ConnectionPanel />
    </section>
  );
}

/** One chat line; own lines say whether they are delivered or still pending. */
function Message(props: { data: ChatLine; mine: boolean; status: 'delivered' | 'pending' }) {
  const { data, mine, status } = props;
  const pending = status === 'pending';
  const at = typeof data.sentAt === 'number' ? new Date(data.sentAt) : undefined;
  return (
    <li
      className={`message role-${data.role}${mine ? ' mine' : ''}${pending ? ' pending' : ''}`}
      data-testid={pending ? 'pending-message' : 'message'}
    >
      <div className="head">
        <span className="name" data-testid="message-name">
          {data.name}
        </span>
        <span className="badge">{data.role}</span>
        {at && (
          <time dateTime={at.toISOString()}>
            {at.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })}
          </time>
        )}
        {mine && (
          <span className="status" data-testid="message-status" data-status={status}>
            {pending ? '◌ pending' : '✓ delivered'}
          </span>
        )}
      </div>
      <p className="text" data-testid="message-text">
        {data.text}
      </p>
    </li>
  );
}

/** Transport, why, the learned wait and reconnects, from the shared connection report. */
function ConnectionPanel() {
  const report = useConnectionReport();
  return (
    <aside className="panel" data-testid="connection-panel" aria-label="Connection">
      <h2>Connection</h2>
      <dl>
        <dt>Transport</dt>
        <dd data-testid="panel-transport">{report.transport ?? 'none yet'}</dd>
        <dt>Why</dt>
        <dd data-testid="panel-why">{report.why ?? 'not connected yet'}</dd>
        <dt>Long-poll wait</dt>
        <dd data-testid="panel-wait">{describeWait(report.waitMs)}</dd>
        <dt>Reconnects</dt>
        <dd data-testid="panel-reconnects">
          {report.reconnects === 0 ? '0' : `${report.reconnects}: ${report.reasons.join('; ')}`}
        </dd>
        <dt>The client's decisions</dt>
        <dd>
          <ol data-testid="panel-events">
            {report.events.length === 0 && <li className="none">none yet</li>}
            {report.events.map((event) => (
              <li key={event.id}>{event.text}</li>
            ))}
          </ol>
        </dd>
      </dl>
    </aside>
  );
}

function Composer(props: {
  room: string;
  draft: (text: string) => ChatLine;
  onInput: () => void;
  onSending: (text: string) => {
    delivered: (id: string | undefined) => void;
    failed: () => void;
  };
}) {
  const send = useSend();
  const [text, setText] = useState('');
  const [error, setError] = useState('');
  const input = useRef<HTMLInputElement>(null);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    if (!text.trim()) return;
    const sent = text;
    // Shown at once as pending: the client queues it while offline and sends it later.
    const mark = props.onSending(sent);
    setText('');
    setError('');
    input.current?.focus();
    try {
      mark.delivered(await send(`chat:${props.room}`, props.draft(sent)));
    } catch (failure) {
      mark.failed();
      setError(failure instanceof Error ? failure.message : String(failure));
      // Give the text back so it can be fixed, unless something new was typed meanwhile.
      setText((current) => (current === '' ? sent : current));
    }
  };

  return (
    <>
      <form className="composer" onSubmit={submit} autoComplete="off">
        <input
          ref={input}
          data-testid="input"
          value={text}
          placeholder="Write a message, Enter sends"
          aria-label="Message"
          onChange={(event) => {
            setText(event.target.value);
            props.onInput();
          }}
        />
        <button type="submit" data-testid="send" disabled={!text.trim()}>
          Send
        </button>
      </form>
      <p className="error" data-testid="error" role="alert">
        {error}
      </p>
    </>
  );
}
