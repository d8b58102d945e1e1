/**
 * `@cometkit/core/share`: one connection per browser. Clients in tabs of one origin with the
 * same URL, user and credentials elect a leader with the Web Locks API; the leader's client holds
 * the only connection, for the union of every tab's topics, and forwards each message with its id
 * over a `BroadcastChannel`. Each tab keeps its own callbacks, cursors and delivered ids, so it
 * delivers once and in order; when the leader goes (closed, crashed, frozen, in the back/forward
 * cache, or hung: followers that hear nothing from it take its lock), the next tab polls from the
 * cursors the tabs hold. Sends go through each tab's own
 * client (a POST from a follower), so they keep `send()`'s guarantees. Where Web Locks or
 * `BroadcastChannel` is missing, the client works alone. An entry point of its own so that the
 * core build does not carry it. See docs/concepts/multi-tab.md.
 */

import type { ClientContext } from './context';
import { type ClientEvents, createEvents } from './events';
import {
  ClosedError,
  type CometClientOptions,
  CometError,
  createCometClient,
  isTopicError,
  TopicError,
} from './index.js';
import {
  PRESENCE_SUFFIX,
  type PresenceEvent,
  type PresenceMember,
  type RewindSpec,
} from './protocol';
import { createTopicStores } from './topic-store';
import type {
  CometClient,
  CometMessage,
  ConnectionState,
  MessageHandler,
  SubscribeOptions,
  TopicMap,
} from './types';
import { checkStart, checkTopics, list } from './validate';

/** Whether this tab holds the shared connection (`leader`) or receives through one (`follower`). */
export type ShareRole = 'leader' | 'follower';

/** The connection state of a shared client: `share` says the tab's role (absent: alone). */
export type SharedConnectionState = ConnectionState & { share?: ShareRole };

/** Options of {@link createSharedCometClient}: the client's, and what partitions sharing. */
export interface SharedCometClientOptions extends CometClientOptions {
  /**
   * What tells one login from another beyond `url` and `userId`: tabs share only when theirs
   * are equal. Only a hash of it is used (in the lock and channel names).
   * @default the `headers` option's value (called once when a function)
   */
  shareKey?: string;
  /**
   * How long a new leader waits for the other tabs' cursors before it polls, in ms.
   * @default 100
   */
  gatherMs?: number;
  /**
   * How long a leader may stay silent before a follower takes its lock, in ms: for a leader
   * whose page hangs without a `freeze` event (a busy main thread, a debugger pause). A
   * follower that heard nothing from the leader for half of it asks; with no answer in the
   * other half, it steals the lock and leads. A leader that runs again follows.
   * @default 2000
   */
  leaderTimeoutMs?: number;
}

/** A client from {@link createSharedCometClient}. */
export interface SharedCometClient<Topics extends TopicMap = TopicMap> extends CometClient<Topics> {
  getState(): SharedConnectionState;
}

/** Ids remembered per topic, in delivery order: repeats are dropped, cursors compared. */
const HEARD_LIMIT = 256;
/**
 * How long a tab that missed messages (a gap before a forwarded one) waits for the leader to
 * poll again from its cursor before it gives up on them: then it resets the topic to where the
 * leader is (a cursor older than the ids the leader remembers cannot be polled from again).
 */
const GAP_PATIENCE_MS = 10_000;

/** Now, in ms, on a monotonic clock where there is one. */
const now = () => globalThis.performance?.now() ?? Date.now();

/** A message as a tab keeps it for a rewind of another tab: `at` is when it was heard. */
interface Kept {
  id?: string;
  data: unknown;
  at: number;
}

/** What tabs say to each other on the channel. */
type Note =
  | {
      k: 'topics';
      from: string;
      topics: Record<string, string | null>;
      /** The tab's topics that wait for their start: a rewind, or a presence topic's members. */
      starts?: Record<string, RewindSpec>;
    }
  | { k: 'replay'; to: string; topic: string; messages: Kept[] }
  | { k: 'bye'; from: string }
  | { k: 'leader'; from: string }
  | { k: 'reconnect'; reason?: string }
  | { k: 'ping'; from: string }
  | { k: 'pong' }
  /** A message; `prev`: the id it came after in the leader's poll (a gap shows as another). */
  | { k: 'm'; topic: string; id?: string; prev?: string; data: unknown }
  | { k: 'pos'; topic: string; cursor: string }
  | { k: 'reset'; topic: string; position?: string }
  | { k: 'refused'; topic: string; message: string; code: string }
  | { k: 'state'; state: ConnectionState };

interface Locks {
  request(
    name: string,
    options: { signal?: AbortSignal; steal?: boolean },
    callback: () => Promise<void>,
  ): Promise<void>;
}
interface Page {
  navigator?: { locks?: Locks };
  BroadcastChannel?: typeof BroadcastChannel;
  crypto?: Crypto;
  addEventListener?: (type: string, listener: (event: { persisted?: boolean }) => void) => void;
  removeEventListener?: (type: string, listener: (event: { persisted?: boolean }) => void) => void;
  document?: Pick<Page, 'addEventListener' | 'removeEventListener'>;
}

/** A hex SHA-256 of `text` (FNV-1a where there is no SubtleCrypto: it only names a partition). */
async function digest(text: string, crypto: Crypto | undefined): Promise<string> {
  const bytes = new TextEncoder().encode(text);
  if (crypto?.subtle) {
    const hash = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
    return [...hash.slice(0, 16)].map((b) => b.toString(16).padStart(2, '0')).join('');
  }
  let hash = 0x811c9dc5;
  for (const byte of bytes) hash = Math.imul(hash ^ byte, 0x01000193) >>> 0;
  return hash.toString(16);
}

/** A state as it crosses the channel: its error as a plain object. */
function plain(state: ConnectionState): ConnectionState {
  if (!('error' in state)) return state;
  const { name, message } = state.error;
  return { ...state, error: { name, message } as CometError };
}
function revive(state: ConnectionState): ConnectionState {
  if (!('error' in state)) return state;
  return { ...state, error: Object.assign(new CometError(state.error.message), state.error) };
}
function sameState(a: object, b: object): boolean {
  const keys = Object.keys(a);
  return (
    keys.length === Object.keys(b).length &&
    keys.every((key) => (a as never)[key] === (b as never)[key])
  );
}

/**
 * Creates a client that shares one connection with the other tabs of this browser that use the
 * same `url`, `userId` and credentials. Without Web Locks or `BroadcastChannel` (Node, old
 * browsers) it is `createCometClient(options)`.
 * @throws `CometError` for an invalid option.
 */
export function createSharedCometClient<Topics extends TopicMap = TopicMap>(
  options: SharedCometClientOptions = {},
): SharedCometClient<Topics> {
  const { shareKey, gatherMs = 100, leaderTimeoutMs = 2000, ...clientOptions } = options;
  const inner = createCometClient(clientOptions);
  const page = globalThis as Page;
  const locks = page.navigator?.locks;
  const Channel = page.BroadcastChannel;
  if (!locks || !Channel) return inner as SharedCometClient<Topics>;

  const tab = inner.sessionGuid;
  const events: ClientEvents = createEvents();
  /** This tab's subscriptions and its cursors in their topics. */
  const handlers = new Map<string, Set<MessageHandler>>();
  const cursors = new Map<string, string>();
  /** Every topic this tab heard of (its own or forwarded for others): ids in order, latest position. */
  const heard = new Map<string, string[]>();
  const latest = new Map<string, string>();
  /**
   * This tab's topics that started without a cursor and wait for their start from the leader:
   * their rewind (`{}` for a presence topic, which starts with its members). Messages of such a
   * topic are heard but not delivered until the start comes (a `replay`), so it stays in order.
   */
  const starts = new Map<string, RewindSpec>();
  /** The last messages heard per topic, and the members of presence topics: what a start replays. */
  const recent = new Map<string, Kept[]>();
  const members = new Map<string, { id?: string; members: Map<string, PresenceMember> }>();
  /** In the leader: the last id its client delivered per topic, what the next one comes after. */
  const tail = new Map<string, string | undefined>();
  /** Topics in which this tab found a gap (a message after one it never had), since when. */
  const behind = new Map<string, number>();
  /** The other tabs' topics and cursors, and the starts they wait for, as they last said. */
  const peers = new Map<string, Record<string, string | null>>();
  const peerStarts = new Map<string, Record<string, RewindSpec>>();
  /** The leader's subscriptions on its own client, one per topic of the union. */
  const held = new Map<string, () => void>();
  let role: ShareRole | undefined;
  let state: SharedConnectionState = inner.getState();
  let channel: BroadcastChannel | undefined;
  let lockName: string | undefined;
  let standing: AbortController | undefined;
  let release: (() => void) | undefined;
  let gatherTimer: ReturnType<typeof setTimeout> | undefined;
  /** A follower's watch over the leader: when it last heard it, when it asked (unanswered). */
  let watchTimer: ReturnType<typeof setTimeout> | undefined;
  let heardLeaderAt = 0;
  let askedAt: number | undefined;
  let changeQueued = false;
  let closed = false;
  let started = false;

  const post = (note: Note) => {
    try {
      channel?.postMessage(note);
    } catch (cause) {
      events.diagnostic('share-post-failed', 'a message could not be shared', { cause });
    }
  };

  function setState(next: ConnectionState, share: ShareRole | undefined) {
    const made: SharedConnectionState = share ? { ...next, share } : next;
    if (sameState(made, state)) return;
    const previous = state;
    state = made;
    events.emit('state', state, previous);
  }

  function hear(topic: string, id: string): boolean {
    let ids = heard.get(topic);
    if (!ids) {
      ids = [];
      heard.set(topic, ids);
    }
    if (ids.includes(id)) return false;
    latest.set(topic, id);
    ids.push(id);
    if (ids.length > HEARD_LIMIT) ids.shift();
    return true;
  }

  /** Keeps a heard message for the starts of other tabs (the members, for a presence topic). */
  function keep(topic: string, id: string | undefined, data: unknown) {
    if (topic.endsWith(PRESENCE_SUFFIX)) {
      // The members now, folded as the presence store does: a sync replaces, join and leave edit.
      const event = data as PresenceEvent;
      let known = members.get(topic);
      if (event?.event === 'sync') {
        known = { members: new Map(event.members.map((member) => [member.id, member])) };
        members.set(topic, known);
      } else if (known && event?.event === 'join') known.members.set(event.member.id, event.member);
      else if (known && event?.event === 'leave') known.members.delete(event.member.id);
      if (known) known.id = id ?? known.id;
      return;
    }
    let kept = recent.get(topic);
    if (!kept) {
      kept = [];
      recent.set(topic, kept);
    }
    kept.push({ id, data, at: Date.now() });
    if (kept.length > HEARD_LIMIT) kept.shift();
  }

  /**
   * Delivers one message to this tab's callbacks, once and in order: a repeat of a heard id is
   * dropped, and so is a message after a gap (see `follows`).
   */
  function deliver(topic: string, id: string | undefined, data: unknown, prev?: string) {
    if (closed) return;
    const subscriptions = handlers.get(topic);
    if (id !== undefined) {
      if (heard.get(topic)?.includes(id)) {
        if (subscriptions) events.diagnostic('duplicate-dropped', `duplicate ${id}`, { topic, id });
        return;
      }
      if (subscriptions && !follows(topic, prev)) return;
      hear(topic, id);
    }
    keep(topic, id, data);
    // Waiting for its start: the start (a replay of what was kept) includes this one.
    if (!subscriptions || starts.has(topic)) return;
    call(subscriptions, topic, id, data);
  }

  /** Calls this tab's callbacks of `topic` with one message. */
  function call(
    subscriptions: Set<MessageHandler>,
    topic: string,
    id: string | undefined,
    data: unknown,
  ) {
    if (id !== undefined) cursors.set(topic, id);
    const message: CometMessage = { topic, id, data };
    for (const callback of [...subscriptions])
      if (subscriptions.has(callback)) events.call(callback, [data, message]);
    events.emit('message', message);
  }

  /**
   * Whether a message that came after `prev` follows the last id this tab has in `topic`. A tab
   * that missed messages (frozen, back from the back/forward cache) finds a gap: it drops what
   * comes after it and tells its cursors, so that the leader polls again from there and the
   * missed messages come, in order, before the later ones. A leader finds one only in messages
   * polled again from before what it remembers: repeats it drops. After GAP_PATIENCE_MS the
   * tab gives up on the missed messages: a reset to where the leader is.
   */
  function follows(topic: string, prev: string | undefined): boolean {
    const last = latest.get(topic);
    if (prev === undefined || last === undefined || prev === last) {
      behind.delete(topic);
      return true;
    }
    const since = behind.get(topic);
    if (since === undefined) {
      behind.set(topic, now());
      events.diagnostic('share-gap', `a gap in ${topic} after ${last}`, {
        topic,
        cursor: last,
        prev,
      });
      // A follower asks the leader to poll again from its cursor.
      if (role !== 'leader') announce();
      return false;
    }
    if (now() - since < GAP_PATIENCE_MS) return false;
    reset(topic, prev);
    return true;
  }

  /** A position the leader's client was told; one this tab had (polled from again) is not news. */
  function position(topic: string, cursor: string) {
    if (topic.endsWith(PRESENCE_SUFFIX)) {
      // A presence topic's sync carries its position as its id: heard now, it would be dropped.
      if (heard.get(topic)?.includes(cursor)) return;
      latest.set(topic, cursor);
    } else if (!hear(topic, cursor)) return;
    if (handlers.has(topic)) cursors.set(topic, cursor);
  }

  /** What a start of `topic` with `spec` replays: the last messages kept, or the members now. */
  function replayOf(topic: string, spec: RewindSpec): Kept[] {
    const known = members.get(topic);
    if (topic.endsWith(PRESENCE_SUFFIX)) {
      const sync: PresenceEvent = { event: 'sync', members: [...(known?.members.values() ?? [])] };
      // No sync heard yet: the handshake is on its way, and brings it.
      return known ? [{ id: known.id, data: sync, at: 0 }] : [];
    }
    let kept = recent.get(topic) ?? [];
    const from = spec.since === undefined ? 0 : Date.now() - spec.since;
    kept = kept.filter((message) => message.at >= from);
    return spec.count === undefined ? kept : kept.slice(-spec.count);
  }

  /** The start this tab waited for: the replayed messages, then live ones (repeats dropped). */
  function begin(topic: string, messages: Kept[]) {
    if (!starts.delete(topic)) return;
    // The replay is older than the live messages heard meanwhile: the next one comes after those.
    const last = latest.get(topic);
    for (const { id, data } of messages) {
      if (id !== undefined) hear(topic, id);
      const subscriptions = handlers.get(topic);
      if (subscriptions && !closed) call(subscriptions, topic, id, data);
    }
    if (last !== undefined) latest.set(topic, last);
  }

  function reset(topic: string, next: string | undefined) {
    heard.delete(topic);
    recent.delete(topic);
    behind.delete(topic);
    if (next === undefined) latest.delete(topic);
    else latest.set(topic, next);
    if (!handlers.has(topic)) return;
    const cursor = cursors.get(topic);
    if (next === undefined) cursors.delete(topic);
    else cursors.set(topic, next);
    events.diagnostic('topic-reset', `reset ${topic}`, { topic, cursor, position: next });
    events.emit('reset', { topic, cursor, position: next });
  }

  function refused(topic: string, message: string, code: string) {
    if (!handlers.delete(topic)) return;
    cursors.delete(topic);
    const error = new TopicError(topic, message, code);
    events.diagnostic('topic-refused', message, { topic, code });
    events.emit('error', error);
    changed();
  }

  /** Of two cursors in `topic`, the earlier; one this tab never heard counts as earlier. */
  function earlier(topic: string, a: string | undefined, b: string | undefined) {
    if (a === undefined || a === b) return b;
    if (b === undefined) return a;
    const ids = heard.get(topic) ?? [];
    const ia = ids.indexOf(a);
    const ib = ids.indexOf(b);
    if (ia < 0) return a;
    return ib < 0 || ib < ia ? b : a;
  }

  /** The union of every tab's topics, each with the earliest cursor a tab holds. */
  function union(): Map<string, string | undefined> {
    const all = new Map<string, string | undefined>();
    const add = (topic: string, cursor: string | undefined) =>
      all.set(topic, earlier(topic, all.has(topic) ? all.get(topic) : latest.get(topic), cursor));
    for (const topic of handlers.keys()) add(topic, cursors.get(topic));
    for (const topics of peers.values())
      for (const [topic, cursor] of Object.entries(topics)) add(topic, cursor ?? undefined);
    return all;
  }

  function hold(topic: string, cursor: string | undefined, spec?: RewindSpec) {
    const options: SubscribeOptions | undefined =
      cursor !== undefined ? { cursor } : spec && { rewind: spec.count, since: spec.since };
    tail.set(topic, cursor ?? latest.get(topic));
    held.set(
      topic,
      inner.subscribe(
        topic,
        (data, message) => {
          const prev = tail.get(topic);
          if (message.id !== undefined) tail.set(topic, message.id);
          post({ k: 'm', topic, id: message.id, prev, data });
          deliver(topic, message.id, data, prev);
        },
        options,
      ),
    );
  }

  /** The starts the tabs wait for, per topic: which tabs, and the widest rewind asked. */
  function wantedStarts(): Map<string, { tabs: string[]; spec: RewindSpec }> {
    const all = new Map<string, { tabs: string[]; spec: RewindSpec }>();
    const add = (from: string, topic: string, spec: RewindSpec) => {
      const entry = all.get(topic) ?? { tabs: [], spec: {} };
      entry.tabs.push(from);
      for (const key of ['count', 'since'] as const)
        if (spec[key] !== undefined) entry.spec[key] = Math.max(entry.spec[key] ?? 0, spec[key]);
      all.set(topic, entry);
    };
    for (const [topic, spec] of starts) if (handlers.has(topic)) add(tab, topic, spec);
    for (const [from, asked] of peerStarts)
      for (const [topic, spec] of Object.entries(asked)) add(from, topic, spec);
    return all;
  }

  /** Gives the tabs waiting for the start of `topic` what was kept of it (nothing: it comes live). */
  function replay(topic: string, tabs: string[], spec: RewindSpec | undefined) {
    for (const to of tabs) {
      const messages = spec ? replayOf(topic, spec) : [];
      if (to === tab) begin(topic, messages);
      else {
        delete peerStarts.get(to)?.[topic];
        post({ k: 'replay', to, topic, messages });
      }
    }
  }

  /** Whether a tab holds a position in `topic` (then the topic continues, never rewinds). */
  function placed(topic: string): boolean {
    if (cursors.has(topic)) return true;
    for (const topics of peers.values()) if (typeof topics[topic] === 'string') return true;
    return false;
  }

  /** The leader follows the union of the tabs' topics; a tab behind it makes it poll again from there. */
  function sync() {
    if (role !== 'leader' || closed || gatherTimer !== undefined) return;
    const wanted = union();
    const asked = wantedStarts();
    for (const [topic, stop] of held)
      if (!wanted.has(topic)) {
        stop();
        held.delete(topic);
      }
    for (const [topic, cursor] of wanted) {
      const stop = held.get(topic);
      const ask = asked.get(topic);
      if (!stop) {
        if (ask && !placed(topic)) {
          // New to the connection: the server rewinds it (or syncs its members) for every tab;
          // the tabs that asked stop waiting first, so they deliver what comes.
          replay(topic, ask.tabs, undefined);
          hold(topic, undefined, ask.spec);
        } else {
          if (ask) replay(topic, ask.tabs, ask.spec);
          hold(topic, cursor);
        }
        continue;
      }
      // Followed already: the tabs that asked get what was kept of it, then live messages.
      if (ask) replay(topic, ask.tabs, ask.spec);
      const ids = heard.get(topic) ?? [];
      const at = cursor === undefined ? -1 : ids.indexOf(cursor);
      if (at < 0 || at === ids.length - 1) continue;
      // A tab is behind (it was frozen, or missed the last forward): poll again from its cursor,
      // after the client forgot the old one (its topic set is applied in a microtask).
      events.diagnostic('share-behind', `a tab is behind in ${topic}: polling from ${cursor}`, {
        topic,
        cursor,
      });
      stop();
      held.delete(topic);
      queueMicrotask(() => {
        queueMicrotask(() => {
          if (role !== 'leader' || closed || held.has(topic) || !union().has(topic)) return;
          hold(topic, cursor);
          // The topic set may look unchanged to the connection (its only topic left and came
          // back): poll again now, from the cursor just set.
          inner.reconnect('a tab is behind');
        });
      });
    }
  }

  function announce() {
    const topics: Record<string, string | null> = {};
    for (const topic of handlers.keys()) topics[topic] = cursors.get(topic) ?? null;
    post({ k: 'topics', from: tab, topics, starts: Object.fromEntries(starts) });
  }

  /** This tab's topic set changed: once per tick, the leader follows it, a follower tells. */
  function changed() {
    if (changeQueued) return;
    changeQueued = true;
    queueMicrotask(() => {
      changeQueued = false;
      for (const topic of cursors.keys()) if (!handlers.has(topic)) cursors.delete(topic);
      for (const topic of starts.keys()) if (!handlers.has(topic)) starts.delete(topic);
      if (closed) return;
      if (role === 'leader') sync();
      else if (role === 'follower') announce();
    });
  }

  function lead() {
    role = 'leader';
    events.diagnostic('share-leader', 'this tab holds the shared connection');
    setState(inner.getState(), 'leader');
    // The followers answer with their topics and cursors; poll once they had the time to.
    peers.clear();
    peerStarts.clear();
    post({ k: 'leader', from: tab });
    gatherTimer = setTimeout(() => {
      gatherTimer = undefined;
      sync();
      post({ k: 'state', state: plain(inner.getState()) });
    }, gatherMs);
  }

  /** Asks for the lock (queued behind the leader, or `steal`ing it); the leader until it goes. */
  function request(steal: boolean) {
    const controller = new AbortController();
    standing = controller;
    let granted = false;
    (locks as Locks)
      .request(lockName as string, steal ? { steal } : { signal: controller.signal }, () => {
        if (closed || controller.signal.aborted) return Promise.resolve();
        granted = true;
        return new Promise<void>((resolve) => {
          release = resolve;
          lead();
        });
      })
      .catch(() => {
        // Rejected after it was granted: another tab stole the lock from this one (it hung).
        if (granted && standing === controller && !closed) stolen();
      });
  }

  /** Joins the election: a follower until the lock is granted, then the leader until it goes. */
  function stand() {
    if (closed || standing || !lockName) return;
    if (role !== 'leader') role = 'follower';
    // Until the leader tells its state: connecting, on the first transport.
    const first = clientOptions.transports?.[0] ?? 'websocket';
    const waiting: ConnectionState = { status: 'connecting', transport: first, attempt: 1 };
    setState(state.status === 'idle' ? waiting : state, 'follower');
    announce();
    request(false);
    watch();
  }

  /** A follower heard the leader (any note only a leader posts): it is alive. */
  function heardLeader() {
    heardLeaderAt = now();
    askedAt = undefined;
  }

  /**
   * A follower watches the leader: quiet for half of `leaderTimeoutMs`, it asks (`ping`, which
   * a live leader answers from its message handler: never late for throttled timers); no answer
   * in the other half, it steals the lock. A tab that hears another ask leaves it to that one.
   */
  function watch() {
    clearTimeout(watchTimer);
    heardLeader();
    const half = leaderTimeoutMs / 2;
    const check = () => {
      watchTimer = undefined;
      if (closed || role !== 'follower' || !standing) return;
      const at = now();
      if (askedAt !== undefined && at - askedAt >= half) {
        events.diagnostic('share-steal', 'the leader did not answer: taking its lock', {
          silentMs: Math.round(at - heardLeaderAt),
        });
        standing.abort();
        request(true);
        return;
      }
      if (askedAt === undefined && at - heardLeaderAt >= half) {
        askedAt = at;
        post({ k: 'ping', from: tab });
      }
      watchTimer = setTimeout(check, half / 2);
    };
    watchTimer = setTimeout(check, half / 2);
  }

  /** This tab led, hung, and another took the lock: it follows, from the cursors it holds. */
  function stolen() {
    events.diagnostic('share-stolen', 'another tab took the shared connection: following it');
    clearTimeout(gatherTimer);
    gatherTimer = undefined;
    for (const stop of held.values()) stop();
    held.clear();
    standing = undefined;
    release = undefined;
    role = 'follower';
    stand();
  }

  /** Leaves the election (frozen, in the back/forward cache, closing): another tab leads. */
  function standDown() {
    clearTimeout(gatherTimer);
    gatherTimer = undefined;
    clearTimeout(watchTimer);
    watchTimer = undefined;
    for (const stop of held.values()) stop();
    held.clear();
    standing?.abort();
    standing = undefined;
    release?.();
    release = undefined;
    if (role === 'leader') role = 'follower';
    post({ k: 'bye', from: tab });
  }

  function onNote(note: Note) {
    if (closed) return;
    if (role === 'follower' && note.k !== 'topics' && note.k !== 'bye' && note.k !== 'reconnect')
      if (note.k !== 'ping' || askedAt === undefined || note.from < tab)
        // Another follower asked the leader: this one leaves it to that one (of two that asked at
        // once, the smaller tab id keeps its question), so only one steals.
        heardLeader();
    switch (note.k) {
      case 'm':
        // Also in a leader: only when another tab stole its lock while it hung, and before it
        // learnt so. Both streams run on from where this tab was, so repeats are dropped.
        deliver(note.topic, note.id, note.data, note.prev);
        return;
      case 'pos':
        if (role !== 'leader') position(note.topic, note.cursor);
        return;
      case 'reset':
        if (role !== 'leader') reset(note.topic, note.position);
        return;
      case 'refused':
        if (role !== 'leader') refused(note.topic, note.message, note.code);
        return;
      case 'state':
        if (role === 'follower') setState(revive(note.state), 'follower');
        return;
      case 'replay':
        if (note.to === tab) begin(note.topic, note.messages);
        return;
      case 'topics':
        peers.set(note.from, note.topics);
        peerStarts.set(note.from, note.starts ?? {});
        if (role === 'leader') {
          sync();
          post({ k: 'state', state: plain(inner.getState()) });
        }
        return;
      case 'bye':
        peers.delete(note.from);
        peerStarts.delete(note.from);
        if (role === 'leader') sync();
        return;
      case 'leader':
        peers.clear();
        peerStarts.clear();
        if (role === 'follower') announce();
        return;
      case 'reconnect':
        if (role === 'leader') inner.reconnect(note.reason);
        return;
      case 'ping':
        if (role === 'leader') post({ k: 'pong' });
    }
  }

  function open() {
    channel = new (Channel as typeof BroadcastChannel)(lockName as string);
    channel.onmessage = (event: MessageEvent<Note>) => onNote(event.data);
  }

  const onPageHide = (event: { persisted?: boolean }) => {
    if (!started || closed) return;
    standDown();
    // Into the back/forward cache: Chromium evicts a cached page that a message reaches on an
    // open channel. Closed, the page stays cached; back, it asks for what it missed.
    if (event.persisted) {
      channel?.close();
      channel = undefined;
    }
  };
  const onPageShow = () => {
    if (!started || closed) return;
    if (!channel) open();
    stand();
  };

  async function start() {
    if (started) return;
    started = true;
    const headers = clientOptions.headers;
    const credentials =
      shareKey ?? JSON.stringify(typeof headers === 'function' ? await headers() : (headers ?? {}));
    const url = new URL(
      clientOptions.url ?? '/api/comet',
      (globalThis as { location?: { href: string } }).location?.href,
    ).href;
    const key = await digest(
      JSON.stringify([url, clientOptions.userId ?? null, credentials]),
      page.crypto,
    );
    if (closed) return;
    lockName = `cometkit:${key}`;
    open();
    page.addEventListener?.('pagehide', onPageHide);
    page.addEventListener?.('pageshow', onPageShow);
    page.document?.addEventListener?.('freeze', onPageHide);
    page.document?.addEventListener?.('resume', onPageShow);
    stand();
  }

  inner.on('state', (next) => {
    if (role === 'leader') {
      setState(next, 'leader');
      post({ k: 'state', state: plain(next) });
    } else if (!role) setState(next, undefined);
  });
  inner.on('position', ({ topic, cursor }) => {
    if (role !== 'leader') return;
    tail.set(topic, cursor);
    post({ k: 'pos', topic, cursor });
    position(topic, cursor);
  });
  inner.on('reset', ({ topic, position: next }) => {
    if (role !== 'leader') return;
    tail.set(topic, next);
    post({ k: 'reset', topic, position: next });
    reset(topic, next);
  });
  inner.on('error', (error) => {
    if (isTopicError(error) && role === 'leader' && held.has(error.topic)) {
      held.delete(error.topic);
      post({ k: 'refused', topic: error.topic, message: error.message, code: error.code });
      refused(error.topic, error.message, error.code);
    } else events.emit('error', error);
  });
  inner.on('diagnostic', (diagnostic) => events.emit('diagnostic', diagnostic));

  const subscribe = (
    topic: string | readonly string[],
    callback: MessageHandler,
    subscribeOptions?: SubscribeOptions,
  ) => {
    if (closed) throw new ClosedError();
    const topics = list(topic);
    checkTopics(topics);
    if (typeof callback !== 'function') throw new CometError('callback must be a function');
    const { cursor, rewind } = checkStart(subscribeOptions);
    for (const name of topics) {
      let subscriptions = handlers.get(name);
      if (!subscriptions) {
        subscriptions = new Set();
        handlers.set(name, subscriptions);
        if (cursor !== undefined && !cursors.has(name)) {
          cursors.set(name, cursor);
          // Ids after the cursor were heard for other tabs, never delivered here: not repeats.
          const ids = heard.get(name);
          const at = ids?.indexOf(cursor) ?? -1;
          if (at >= 0) {
            ids?.splice(at + 1);
            latest.set(name, cursor);
          }
        } else if (cursor === undefined && (rewind || name.endsWith(PRESENCE_SUFFIX))) {
          // Its history (or its members) come from the leader, in a replay or from the server.
          starts.set(name, rewind ?? {});
        }
      }
      subscriptions.add(callback);
    }
    changed();
    start().catch((cause) =>
      events.diagnostic('share-unavailable', 'sharing failed to start', { cause }),
    );
    // The same callback may be subscribed twice: each subscription removes itself once.
    let active = true;
    return () => {
      if (!active) return;
      active = false;
      for (const name of topics) {
        const subscriptions = handlers.get(name);
        if (subscriptions?.delete(callback) && subscriptions.size === 0) handlers.delete(name);
      }
      changed();
    };
  };

  const context = {
    get closed() {
      return closed;
    },
    events,
  } as unknown as ClientContext;
  const stores = createTopicStores(context, (topic, callback, storeOptions) =>
    client.subscribe(topic, callback, storeOptions),
  );

  const client: SharedCometClient = {
    sessionGuid: tab,
    url: inner.url,
    subscribe: subscribe as SharedCometClient['subscribe'],
    unsubscribe(topic) {
      const topics = topic === undefined ? [...handlers.keys()] : list(topic);
      checkTopics(topics);
      for (const name of topics) handlers.delete(name);
      changed();
    },
    send: (topic, data) => inner.send(topic, data),
    reconnect(reason) {
      if (role === 'follower') post({ k: 'reconnect', reason });
      else inner.reconnect(reason);
    },
    close() {
      if (closed) return;
      if (started) standDown();
      closed = true;
      channel?.close();
      page.removeEventListener?.('pagehide', onPageHide);
      page.removeEventListener?.('pageshow', onPageShow);
      page.document?.removeEventListener?.('freeze', onPageHide);
      page.document?.removeEventListener?.('resume', onPageShow);
      inner.close();
      handlers.clear();
      stores.clear();
      setState(inner.getState(), undefined);
      events.clear();
    },
    getState: () => state,
    subscribeState: (listener) => events.on('state', (next) => listener(next)),
    on: (event, listener) => (closed ? () => {} : events.on(event, listener)),
    topicStore: (topic, storeOptions) => stores.get(topic, storeOptions) as never,
  };
  return client as unknown as SharedCometClient<Topics>;
}
