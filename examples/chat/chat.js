// The support chat with nothing but the script-tag builds: `Cometkit` is the global that
// /cometkit.global.js defines, `CometkitShare` (tabs share one connection) and
// `CometkitPresence` the globals of share.global.js and presence.global.js. No bundler, no framework: this file is a native module that
// imports only the demo's shared rules (/shared/demo.js); text only ever goes in textContent.
// The contract this page follows is examples/CHAT.md.
import {
  createConnectionReport,
  describeOnline,
  describeWait,
  HISTORY_LINES,
  joinProblem,
  memberHeaders,
  NAME_MAX,
  readQuery,
  rememberMember,
} from '/shared/demo.js';

const ROLES = ['agent', 'customer'];
const TYPING_EVERY_MS = 2000; // send `typing: true` at most this often
const TYPING_IDLE_MS = 3000; // then `typing: false` after this long without a key
const TYPING_SHOWN_MS = 4000; // someone else's "is typing…" lasts this long
const NEAR_BOTTOM_PX = 40; // closer than this to the end counts as "reading the newest"

const $ = (id) => document.getElementById(id);
const joinForm = $('join-form');
const nameInput = $('name-input');
const roleSelect = $('role-select');
const roomInput = $('room-input');
const joinError = $('join-error');
const chat = $('chat');
const list = $('messages');
const empty = $('empty');
const typingLine = $('typing');
const composer = $('composer');
const input = $('input');
const sendButton = $('send');
const errorLine = $('error');
const connection = $('connection');

function showError(message) {
  errorLine.textContent = message;
}

function showJoinProblem(problem) {
  joinError.textContent = problem?.message ?? '';
  nameInput.setAttribute('aria-invalid', String(problem?.field === 'name'));
  roomInput.setAttribute('aria-invalid', String(problem?.field === 'room'));
}

if (typeof window.Cometkit === 'undefined') {
  connection.textContent = 'failed: cometkit.global.js did not load';
  connection.dataset.status = 'failed';
  showJoinProblem({ message: '/cometkit.global.js is missing: run pnpm build, then reload.' });
  $('join').disabled = true;
} else {
  // ---- the join form, prefilled from ?room=&name=&role= ----
  const query = readQuery(location.search);
  roomInput.value = query.room;
  nameInput.value = query.name;
  roleSelect.value = query.role;
  if (query.problem) showJoinProblem({ field: 'room', message: query.problem });

  joinForm.addEventListener('submit', (event) => {
    event.preventDefault();
    const me = {
      name: nameInput.value.trim().slice(0, NAME_MAX),
      role: roleSelect.value,
      room: roomInput.value.trim(),
    };
    const problem = joinProblem(me);
    showJoinProblem(problem);
    if (problem) {
      (problem.field === 'room' ? roomInput : nameInput).focus();
      return;
    }
    join(me);
  });

  if (query.join) join({ name: query.name, role: query.role, room: query.room });
}

// ---- the chat ----
function join(me) {
  // A reload of this address joins again, so it catches up with what it missed.
  const here = new URL(location.href);
  here.searchParams.set('room', me.room);
  here.searchParams.set('name', me.name);
  here.searchParams.set('role', me.role);
  history.replaceState(null, '', here);

  joinForm.hidden = true;
  chat.hidden = false;
  $('room-name').textContent = me.room;
  $('me').textContent = `${me.name} (${me.role})`;

  const chatTopic = `chat:${me.room}`;
  const typingTopic = `typing:${me.room}`;
  // Before the presence subscription starts: the server reads who this page is from it.
  rememberMember(me);
  // The tabs of this browser with the same member share one connection (share.global.js);
  // without that script the page works alone.
  const create = window.CometkitShare?.createSharedCometClient ?? window.Cometkit.createCometClient;
  const client = create({
    url: '/api/comet',
    transports: ['websocket', 'stream', 'longpoll'],
    headers: memberHeaders,
  });
  // Created with the client, so it hears the very first decisions.
  const report = createConnectionReport(client);
  report.subscribe(() => showReport(report.getSnapshot()));
  showReport(report.getSnapshot());
  // What the client decided and why, also for the developer tools.
  client.on('diagnostic', (d) =>
    console.info(`[cometkit] ${d.code}: ${d.message}`, d.detail ?? ''),
  );
  window.addEventListener('pagehide', () => client.close());
  // Who is in the room: the presence entry point's store (its own script, presence.global.js).
  const online = window.CometkitPresence.presence(client, chatTopic);
  const showOnline = () => {
    $('online').textContent = describeOnline(online.getSnapshot());
  };
  online.subscribe(showOnline);
  showOnline();

  // ids already shown: after a reset (the server lost our place) the client starts the room
  // again from the server's history, and the lines already on screen are not shown twice.
  const shown = new Set();
  // Own sends the server has taken (id → their pending line) until they come back as messages.
  const awaiting = new Map();

  const isMine = (data) => data.name === me.name && data.role === me.role;
  const nearBottom = () => list.scrollHeight - list.scrollTop - list.clientHeight < NEAR_BOTTOM_PX;
  const scrollToEnd = () => {
    list.scrollTop = list.scrollHeight;
  };
  const showEmpty = () => {
    empty.hidden = list.children.length > 1;
  };

  function line(data, { pending }) {
    const role = ROLES.includes(data.role) ? data.role : 'customer';
    const item = document.createElement('li');
    item.className = `message role-${role}`;
    if (isMine(data)) item.classList.add('mine');
    if (pending) item.classList.add('pending');
    item.dataset.testid = pending ? 'pending-message' : 'message';
    const name = document.createElement('span');
    name.className = 'name';
    name.dataset.testid = 'message-name';
    name.textContent = String(data.name ?? '');
    const badge = document.createElement('span');
    badge.className = 'badge';
    badge.textContent = role;
    const time = document.createElement('time');
    if (typeof data.sentAt === 'number') {
      const at = new Date(data.sentAt);
      time.dateTime = at.toISOString();
      time.textContent = at.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
    }
    const head = document.createElement('div');
    head.className = 'head';
    head.append(name, badge, time);
    if (pending || isMine(data)) {
      const status = document.createElement('span');
      status.className = 'status';
      status.dataset.testid = 'message-status';
      status.dataset.status = pending ? 'pending' : 'delivered';
      status.textContent = pending ? '◌ pending' : '✓ delivered';
      head.append(status);
    }
    const text = document.createElement('p');
    text.className = 'text';
    text.dataset.testid = 'message-text';
    text.textContent = String(data.text ?? '');
    item.append(head, text);
    return item;
  }

  function render(message) {
    if (message.id !== undefined) {
      if (shown.has(message.id)) return;
      shown.add(message.id);
    }
    const data = message.data ?? {};
    const follow = nearBottom() || isMine(data);
    const item = line(data, { pending: false });
    if (message.id !== undefined) item.dataset.id = message.id;
    // Live messages go before the pending lines, which stay last until they are sent.
    const firstPending = list.querySelector('.pending');
    list.insertBefore(item, firstPending);
    awaiting.get(message.id)?.remove();
    awaiting.delete(message.id);
    showEmpty();
    if (follow) scrollToEnd();
    forget(data.name, data.role); // a message ends its author's "is typing…"
  }

  // The room's last lines from the server's history (a rewind), then live ones: nothing lost,
  // nothing repeated.
  client.subscribe(chatTopic, (_data, message) => render(message), { rewind: HISTORY_LINES });

  // ---- the connection pill and panel ----
  function showReport(r) {
    connection.textContent = r.summary;
    connection.dataset.status = r.state.status;
    $('panel-transport').textContent = r.transport ?? 'none yet';
    $('panel-why').textContent = r.why ?? 'not connected yet';
    $('panel-wait').textContent = describeWait(r.waitMs);
    $('panel-reconnects').textContent =
      r.reconnects === 0 ? '0' : `${r.reconnects}: ${r.reasons.join('; ')}`;
    const events = r.events.length ? r.events : [{ text: 'none yet', none: true }];
    $('panel-events').replaceChildren(
      ...events.map((e) => {
        const item = document.createElement('li');
        item.textContent = e.text;
        if (e.none) item.className = 'none';
        return item;
      }),
    );
  }

  // ---- who is typing ----
  const typers = new Map(); // "role:name" → { name, timer }

  function showTypers() {
    const names = [...typers.values()].map((t) => t.name);
    typingLine.textContent =
      names.length === 0
        ? ''
        : names.length === 1
          ? `${names[0]} is typing…`
          : `${names.slice(0, -1).join(', ')} and ${names.at(-1)} are typing…`;
  }

  function forget(name, role) {
    const key = `${role}:${name}`;
    const typer = typers.get(key);
    if (!typer) return;
    clearTimeout(typer.timer);
    typers.delete(key);
    showTypers();
  }

  client.subscribe(typingTopic, (data) => {
    if (!data || isMine(data)) return;
    forget(data.name, data.role);
    if (data.typing === true) {
      const key = `${data.role}:${data.name}`;
      const timer = setTimeout(() => forget(data.name, data.role), TYPING_SHOWN_MS);
      typers.set(key, { name: String(data.name), timer });
      showTypers();
    }
  });

  let lastTypingSent = 0;
  let typingIdle;
  const sendTyping = (typing) => {
    client.send(typingTopic, { name: me.name, role: me.role, typing }).catch(() => {}); // a lost typing notice is not worth an error line
  };
  function stopTyping() {
    clearTimeout(typingIdle);
    typingIdle = undefined;
    if (lastTypingSent !== 0) {
      lastTypingSent = 0;
      sendTyping(false);
    }
  }

  // ---- the composer ----
  const blank = () => input.value.trim() === '';
  input.addEventListener('input', () => {
    sendButton.disabled = blank();
    if (blank()) {
      stopTyping();
      return;
    }
    const now = Date.now();
    if (now - lastTypingSent >= TYPING_EVERY_MS) {
      lastTypingSent = now;
      sendTyping(true);
    }
    clearTimeout(typingIdle);
    typingIdle = setTimeout(stopTyping, TYPING_IDLE_MS);
  });

  composer.addEventListener('submit', (event) => {
    event.preventDefault();
    if (blank()) return;
    const text = input.value;
    input.value = '';
    sendButton.disabled = true;
    showError('');
    stopTyping();
    // Shown at once as pending: the client queues it while offline and sends it later.
    const pending = line({ name: me.name, role: me.role, text }, { pending: true });
    list.append(pending);
    showEmpty();
    scrollToEnd();
    client.send(chatTopic, { name: me.name, role: me.role, text }).then(
      (id) => {
        // Delivered: the message itself replaces the pending line (now, or when it arrives).
        if (shown.has(id)) pending.remove();
        else awaiting.set(id, pending);
        showEmpty();
      },
      (error) => {
        pending.remove();
        showEmpty();
        showError(error.message);
        // Give the text back so it can be fixed, unless something new was typed meanwhile.
        if (input.value === '') {
          input.value = text;
          sendButton.disabled = blank();
        }
      },
    );
  });

  input.focus();
}
