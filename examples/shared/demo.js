// What the three demo UIs share besides their look (demo.css): the chat's join rules and the
// connection report that feeds their connection panel. Plain JavaScript with no imports, so
// the script-tag page loads it as a native module and the React and Angular builds bundle it;
// its types are in demo.d.ts. Each UI only binds it with its framework's idiom.

/** A room id: 1 to 40 of a-z, 0-9 and `-` (examples/CHAT.md; the server checks the same). */
export const ROOM = /^[a-z0-9-]{1,40}$/;

/** The room used when the address names none. */
export const DEFAULT_ROOM = 'support';

/** The longest name the server takes. */
export const NAME_MAX = 40;

/**
 * How many earlier lines a UI shows when it joins a room: the rewind of its subscription to
 * `chat:{room}` (the server's history keeps more, see server.mjs).
 */
export const HISTORY_LINES = 50;

/**
 * Why a join cannot go ahead, or undefined when it can. Names are trimmed first, so a name of
 * only spaces is blank.
 * @param {{ room: string, name: string }} join
 * @returns {{ field: 'room' | 'name', message: string } | undefined}
 */
export function joinProblem({ room, name }) {
  if (!ROOM.test(room)) {
    return {
      field: 'room',
      message:
        room === ''
          ? 'Enter a room: 1 to 40 of a-z, 0-9 and -.'
          : `"${room}" is not a room: use 1 to 40 of a-z, 0-9 and - (e.g. support).`,
    };
  }
  if (name.trim() === '') return { field: 'name', message: 'Enter your name (not only spaces).' };
  return undefined;
}

/**
 * The join form's starting values from `?room=…&name=…&role=…`, and whether to join at once
 * (name and role given, room valid). A bad room is kept, so the form can show and fix it.
 * @param {string} search
 */
export function readQuery(search) {
  const params = new URLSearchParams(search);
  const roomParam = params.get('room');
  const room = roomParam ?? DEFAULT_ROOM;
  const name = (params.get('name') ?? '').trim().slice(0, NAME_MAX);
  const roleParam = params.get('role');
  const roleGiven = roleParam === 'agent' || roleParam === 'customer';
  /** @type {'agent' | 'customer'} */
  const role = roleParam === 'agent' ? 'agent' : 'customer';
  const problem = roomParam === null ? undefined : joinProblem({ room, name: 'x' });
  return {
    room,
    name,
    role,
    problem: problem?.message,
    join: name !== '' && roleGiven && problem === undefined,
  };
}

/** How many of the client's decisions the panel lists. */
const EVENTS_KEPT = 6;
/** Diagnostics too frequent or too small for the panel. */
const QUIET = new Set(['duplicate-dropped', 'topics-changed', 'listener-error', 'idle-stop']);

/** `connected · websocket`, `reconnecting (attempt 2)`… for the status pill. */
export function describeState(state) {
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

/**
 * Follows a client's connection state and `diagnostic` events into what the demo's connection
 * panel shows: the transport, why it is that one, the learned long-poll wait, reconnect
 * attempts and their reasons. It listens from creation on (create it with the client, before
 * anything subscribes, so the first decisions are not missed), and is an external store:
 * `subscribe` + `getSnapshot`, the snapshot's identity changing only on a change.
 * @param {import('@cometkit/core').CometClient} client
 */
export function createConnectionReport(client) {
  const listeners = new Set();
  let seq = 0;
  let report = {
    state: client.getState(),
    summary: describeState(client.getState()),
    transport: undefined,
    why: undefined,
    waitMs: undefined,
    reconnects: 0,
    reasons: [],
    events: [],
  };

  const update = (changes) => {
    report = { ...report, ...changes };
    for (const listener of [...listeners]) listener();
  };
  const event = (text) => {
    seq += 1;
    return [...report.events, { id: seq, text }].slice(-EVENTS_KEPT);
  };

  const stopState = client.subscribeState((state) => {
    const changes = { state, summary: describeState(state) };
    if (state.status === 'connected') {
      changes.transport = state.transport;
      // Nothing said otherwise: the first transport of the list opened.
      if (report.why === undefined) changes.why = `${state.transport}: the first choice, it opened`;
    }
    if (state.status === 'reconnecting' && report.state.status !== 'reconnecting') {
      const reason = `attempt ${state.attempt}: ${state.error.message}`;
      changes.reconnects = report.reconnects + 1;
      changes.reasons = [...report.reasons, reason].slice(-3);
    }
    update(changes);
  });

  const stopDiagnostics = client.on('diagnostic', (d) => {
    if (QUIET.has(d.code)) return;
    const detail = d.detail ?? {};
    const changes = { events: event(`${d.code}: ${d.message}`) };
    if (d.code === 'transport-fallback' || d.code === 'transport-demoted') {
      const from = String(detail.from ?? 'the transport');
      const verb = d.code === 'transport-fallback' ? 'refused' : 'failed';
      // The reason in full is in the events list; the line says what happened.
      changes.why = `${from} ${verb}, fell back to ${detail.to}`;
    } else if (d.code === 'transport-remembered') {
      changes.why = `${detail.transport}: remembered, it worked here before`;
    } else if (d.code === 'transport-upgrade') {
      changes.why = d.message;
    } else if (
      (d.code === 'wait-lowered' || d.code === 'wait-raised') &&
      typeof detail.wait === 'number'
    ) {
      changes.waitMs = detail.wait;
    }
    update(changes);
  });

  return {
    subscribe(onChange) {
      listeners.add(onChange);
      return () => listeners.delete(onChange);
    },
    getSnapshot: () => report,
    /** Stops following the client. */
    stop() {
      stopState();
      stopDiagnostics();
      listeners.clear();
    },
  };
}

/** The panel's wait line: the learned long-poll wait, or that there is none. */
export function describeWait(waitMs) {
  return waitMs === undefined
    ? 'server default (nothing learned)'
    : `${(waitMs / 1000).toFixed(1)} s (lowered after a proxy timeout)`;
}

/** The request header that tells the server who this page is in the presence list. */
export const MEMBER_HEADER = 'x-demo-member';

let member;

/** Remembers the joined name and role for the server's presence hook (see memberHeaders). */
export function rememberMember({ name, role }) {
  member = { name, role };
}

/** The client's `headers` option: who this page is, once it joined (read on each request). */
export function memberHeaders() {
  return member ? { [MEMBER_HEADER]: encodeURIComponent(JSON.stringify(member)) } : {};
}

/** The presence line: `Online (2): Ann (agent), Bob (customer)`, each person once (tabs). */
export function describeOnline(members) {
  const people = new Set();
  for (const member of members) {
    if (typeof member.userId !== 'string') continue;
    const role = member.data?.role;
    people.add(role ? `${member.userId} (${role})` : member.userId);
  }
  const names = [...people].sort((a, b) => a.localeCompare(b));
  return names.length === 0
    ? 'Online: nobody yet'
    : `Online (${names.length}): ${names.join(', ')}`;
}
