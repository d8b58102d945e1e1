import { useSend, useTopic } from '@cometkit/react';
import { useCallback, useEffect, useRef, useState } from 'react';
import type { Role } from './comet';

/** How long "… is typing" stays after the last `typing: true`. */
const SHOWN_MS = 4000;
/** At most one `typing: true` per this many ms while the user types. */
const REPEAT_MS = 2000;
/** `typing: false` after this long without a keystroke. */
const IDLE_MS = 3000;

/**
 * The typing indicator of examples/CHAT.md: who else is typing in `room`, and the two calls the
 * composer makes (on each keystroke, and on send). Typing notices are best effort: a lost one
 * only shortens or lengthens the indicator, so their errors are ignored.
 */
export function useTyping(room: string, name: string, role: Role) {
  const send = useSend();
  const [typers, setTypers] = useState<ReadonlyMap<string, number>>(new Map());

  useTopic(`typing:${room}`, (notice) => {
    if (notice.name === name && notice.role === role) return;
    setTypers((previous) => {
      const next = new Map(previous);
      if (notice.typing) next.set(notice.name, Date.now() + SHOWN_MS);
      else next.delete(notice.name);
      return next;
    });
  });

  // Drop each name when its time is up.
  useEffect(() => {
    if (typers.size === 0) return;
    const soonest = Math.min(...typers.values());
    const timer = setTimeout(
      () =>
        setTypers((previous) => new Map([...previous].filter(([, until]) => until > Date.now()))),
      Math.max(0, soonest - Date.now()) + 20,
    );
    return () => clearTimeout(timer);
  }, [typers]);

  const lastTrue = useRef(0);
  const idleTimer = useRef<ReturnType<typeof setTimeout> | undefined>(undefined);

  const notice = useCallback(
    (typing: boolean) => {
      send(`typing:${room}`, { name, role, typing }).catch(() => {});
    },
    [send, room, name, role],
  );

  const stopTyping = useCallback(() => {
    clearTimeout(idleTimer.current);
    if (lastTrue.current === 0) return;
    lastTrue.current = 0;
    notice(false);
  }, [notice]);

  const notifyTyping = useCallback(() => {
    const now = Date.now();
    if (now - lastTrue.current >= REPEAT_MS) {
      lastTrue.current = now;
      notice(true);
    }
    clearTimeout(idleTimer.current);
    idleTimer.current = setTimeout(stopTyping, IDLE_MS);
  }, [notice, stopTyping]);

  useEffect(() => () => clearTimeout(idleTimer.current), []);

  return { typingNames: [...typers.keys()], notifyTyping, stopTyping };
}
