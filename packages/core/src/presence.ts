/**
 * `@cometkit/core/presence`: who is on a topic, as a store for UI bindings. Its own entry point,
 * so a page that does not use presence does not pay its bytes. Subscribing `{topic}@presence`
 * makes this client present on `topic` (the server keeps it there while it polls) and delivers
 * the members: a `sync`, then joins and leaves, in order and once, like any topic. The store
 * leaves at once when its last listener goes, on `client.close()` and on `pagehide`.
 */
import {
  LEAVE_PATH,
  type LeaveRequest,
  PRESENCE_SUFFIX,
  type PresenceEvent,
  type PresenceMember,
} from './protocol';
import type { CometClient, TopicMap } from './types';

export type { PresenceEvent, PresenceMember } from './protocol';
export { PRESENCE_SUFFIX } from './protocol';

/** Options of {@link presence}. */
export interface PresenceOptions {
  /**
   * The `fetch` of the leave request (sent with `keepalive`, so it outlives the page).
   * @default globalThis.fetch, read when leaving
   */
  fetch?: (input: string, init: RequestInit) => Promise<unknown>;
}

/** Who is on a topic: an external store (React `useSyncExternalStore`, Angular signals). */
export interface PresenceStore {
  /**
   * Starts following (and being on) the topic with the first listener; the last one's
   * unsubscribe leaves 1 s later unless another listener came (React StrictMode remounts).
   */
  subscribe(onChange: () => void): () => void;
  /** The members now, in join order (this client too); a new array on each change. */
  getSnapshot(): readonly PresenceMember[];
  /** Calls `listener` with each member that joins or leaves (not with the first members). */
  on(event: 'join' | 'leave', listener: (member: PresenceMember) => void): () => void;
}

const EMPTY: readonly PresenceMember[] = [];
/** How long the store stays on the topic after its last listener went (React StrictMode). */
const GRACE_MS = 1000;
const stores = new WeakMap<object, Map<string, PresenceStore>>();

/**
 * The presence store of `topic` on `client` (one per client and topic). The server must have
 * `presence` on; its `authorize` hook decides who may see it (action `presence`).
 * @throws `TopicError` (at the first subscribe) when `topic` is not valid.
 */
export function presence<Topics extends TopicMap>(
  client: CometClient<Topics>,
  topic: string,
  options: PresenceOptions = {},
): PresenceStore {
  let byTopic = stores.get(client);
  if (!byTopic) {
    byTopic = new Map();
    stores.set(client, byTopic);
  }
  let store = byTopic.get(topic);
  if (!store) {
    // Any topic map: presence topics are outside it, and the store only needs strings.
    store = createStore(client as unknown as CometClient, topic + PRESENCE_SUFFIX, options);
    byTopic.set(topic, store);
  }
  return store;
}

function createStore(client: CometClient, topic: string, options: PresenceOptions): PresenceStore {
  let members = new Map<string, PresenceMember>();
  let snapshot = EMPTY;
  let synced = false;
  const listeners = new Set<() => void>();
  const events = {
    join: new Set<(member: PresenceMember) => void>(),
    leave: new Set<(member: PresenceMember) => void>(),
  };
  let stop: (() => void) | undefined;
  let grace: ReturnType<typeof setTimeout> | undefined;

  const emit = (event: 'join' | 'leave', member: PresenceMember) => {
    if (synced) for (const listener of [...events[event]]) listener(member);
  };

  function apply(data: PresenceEvent) {
    if (data.event === 'sync') {
      const next = new Map(data.members.map((member) => [member.id, member]));
      for (const [id, member] of members) if (!next.has(id)) emit('leave', member);
      for (const [id, member] of next) if (!members.has(id)) emit('join', member);
      members = next;
      synced = true;
    } else if (data.event === 'join') {
      // A join of a member already here carries new data: it keeps its place.
      if (!members.has(data.member.id)) emit('join', data.member);
      members.set(data.member.id, data.member);
    } else if (members.delete(data.member.id)) emit('leave', data.member);
    snapshot = [...members.values()];
    for (const listener of [...listeners]) listener();
  }

  function leave() {
    const body: LeaveRequest = { v: 1, sessionGuid: client.sessionGuid, topics: [topic] };
    (options.fetch ?? globalThis.fetch)?.(`${client.url}/${LEAVE_PATH}`, {
      method: 'POST',
      keepalive: true,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    })?.catch(() => {});
  }

  function start() {
    const unsubscribe = client.subscribe(topic, (data) => apply(data as PresenceEvent));
    const stopClose = client.on('state', (state) => state.status === 'closed' && end());
    const target = globalThis as Partial<Pick<Window, 'addEventListener' | 'removeEventListener'>>;
    // Back from the back/forward cache after a leave: a new poll makes it present again.
    const back = (event: Event) =>
      (event as PageTransitionEvent).persisted && client.reconnect('presence: page shown again');
    target.addEventListener?.('pagehide', leave);
    target.addEventListener?.('pageshow', back);
    function end() {
      stop = undefined;
      unsubscribe();
      stopClose();
      target.removeEventListener?.('pagehide', leave);
      target.removeEventListener?.('pageshow', back);
      members = new Map();
      snapshot = EMPTY;
      synced = false;
      leave();
    }
    return end;
  }

  return {
    subscribe(onChange) {
      listeners.add(onChange);
      clearTimeout(grace);
      stop ??= start();
      return () => {
        if (listeners.delete(onChange) && listeners.size === 0)
          grace = setTimeout(() => listeners.size === 0 && stop?.(), GRACE_MS);
      };
    },
    getSnapshot: () => snapshot,
    on(event, listener) {
      events[event].add(listener);
      return () => events[event].delete(listener);
    },
  };
}
