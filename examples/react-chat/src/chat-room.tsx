import type { ConnectionState } from '@cometkit/core';
import { useConnectionState, useSend, useTopic } from '@cometkit/react';
import { type FormEvent, useEffect, useRef, useState } from 'react';
import type { Identity } from './app';
import { type ChatLine, fetchHistory, type History } from './comet';
import { useTyping } from './use-typing';

/** Lines kept on screen; older ones scroll away for good. */
const MAX_LINES = 200;

/** The room: connection state, the history plus live lines, who is typing, the composer. */
export function ChatRoom({ room, name, role }: Identity) {
  const [history, setHistory] = useState<History | undefined>();
  const [lines, setLines] = useState<{ id: string | undefined; data: ChatLine }[]>([]);
  const [loadError, setLoadError] = useState<string | undefined>();

  useEffect(() => {
    const abort = new AbortController();
    fetchHistory(room, abort.signal).then(
      (loaded) => {
        setLines(loaded.messages);
        setHistory(loaded);
      },
      (error: unknown) => {
        if (!abort.signal.aborted) setLoadError(String(error));
      },
    );
    return () => abort.abort();
  }, [room]);

  // Live lines start right after the history's position: nothing lost, nothing twice.
  useTopic(
    `chat:${room}`,
    (data, message) => setLines((all) => [...all, { id: message.id, data }].slice(-MAX_LINES)),
    { enabled: history !== undefined, cursor: history?.cursor },
  );

  const { typingNames, notifyTyping, stopTyping } = useTyping(room, name, role);

  return (
    <section className="room">
      <Connection />
      <ol className="messages" data-testid="messages">
        {lines.map((line, index) => (
          <li
            key={line.id ?? `legacy-${index}`}
            className={`message role-${line.data.role}`}
            data-testid="message"
          >
            <span className="message-name" data-testid="message-name">
              {line.data.name}
            </span>
            <span className="message-text" data-testid="message-text">
              {line.data.text}
            </span>
          </li>
        ))}
      </ol>
      {loadError && <p className="error">{loadError}</p>}
      <p className="typing" data-testid="typing" aria-live="polite">
        {typingNames.length === 0
          ? ''
          : `${typingNames.join(', ')} ${typingNames.length === 1 ? 'is' : 'are'} typing…`}
      </p>
      <Composer
        draft={(text) => ({ name, role, text })}
        room={room}
        onInput={notifyTyping}
        onSent={stopTyping}
      />
    </section>
  );
}

/** `connected · websocket`, `reconnecting (attempt 2)`… */
function describe(state: ConnectionState): string {
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

function Connection() {
  const state = useConnectionState();
  return (
    <p className={`connection status-${state.status}`} data-testid="connection">
      {describe(state)}
    </p>
  );
}

function Composer(props: {
  room: string;
  draft: (text: string) => ChatLine;
  onInput: () => void;
  onSent: () => void;
}) {
  const send = useSend();
  const [text, setText] = useState('');
  const [error, setError] = useState('');
  const input = useRef<HTMLInputElement>(null);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    if (!text.trim()) return;
    props.onSent();
    try {
      await send(`chat:${props.room}`, props.draft(text));
      setText('');
      setError('');
    } catch (failure) {
      setError(failure instanceof Error ? failure.message : String(failure));
    }
    input.current?.focus();
  };

  return (
    <form className="composer" onSubmit={submit}>
      <input
        ref={input}
        data-testid="input"
        value={text}
        placeholder="Write a message"
        aria-label="Message"
        onChange={(event) => {
          setText(event.target.value);
          props.onInput();
        }}
      />
      <button type="submit" data-testid="send" disabled={!text.trim()}>
        Send
      </button>
      <p className="error" data-testid="error" role="alert">
        {error}
      </p>
    </form>
  );
}
