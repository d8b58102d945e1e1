// The support chat with nothing but the script-tag build: `Cometkit` is the global that
// /cometkit.global.js defines. No bundler, no framework; text only ever goes in textContent.
// The contract this page follows is examples/CHAT.md.
(() => {
  const ROOM = /^[a-z0-9-]{1,40}$/;
  const ROLES = ['agent', 'customer'];
  const TYPING_EVERY_MS = 2000; // send `typing: true` at most this often
  const TYPING_IDLE_MS = 3000; // then `typing: false` after this long without a key
  const TYPING_SHOWN_MS = 4000; // someone else's "is typing…" lasts this long

  const $ = (id) => document.getElementById(id);
  const joinForm = $('join-form');
  const nameInput = $('name-input');
  const roleSelect = $('role-select');
  const roomInput = $('room-input');
  const chat = $('chat');
  const list = $('messages');
  const typingLine = $('typing');
  const composer = $('composer');
  const input = $('input');
  const sendButton = $('send');
  const errorLine = $('error');
  const connection = $('connection');

  function showConnection(state) {
    let text = state.status;
    if (state.status === 'connected') text = `connected · ${state.transport}`;
    else if (state.status === 'connecting') text = `connecting · ${state.transport}`;
    else if (state.status === 'reconnecting') {
      text = `reconnecting (attempt ${state.attempt}) · ${state.error.message}`;
    } else if (state.status === 'failed') text = `failed · ${state.error.message}`;
    connection.textContent = text;
    connection.dataset.status = state.status;
    if (state.transport) connection.dataset.transport = state.transport;
    else delete connection.dataset.transport;
  }

  function showError(message) {
    errorLine.textContent = message;
  }

  if (typeof window.Cometkit === 'undefined') {
    showConnection({ status: 'failed', error: { message: 'cometkit.global.js did not load' } });
    showError('/cometkit.global.js is missing: run pnpm build in the repository, then reload.');
    joinForm.querySelector('button').disabled = true;
    return;
  }

  // ---- the join form, prefilled from ?room=&name=&role= ----
  const params = new URLSearchParams(location.search);
  const roomParam = params.get('room');
  if (roomParam && ROOM.test(roomParam)) roomInput.value = roomParam;
  if (params.get('name')) nameInput.value = params.get('name').slice(0, 40);
  if (ROLES.includes(params.get('role'))) roleSelect.value = params.get('role');

  joinForm.addEventListener('submit', (event) => {
    event.preventDefault();
    const name = nameInput.value.trim();
    const room = roomInput.value.trim();
    if (!name || !ROOM.test(room)) {
      joinForm.reportValidity();
      return;
    }
    join({ name, role: roleSelect.value, room });
  });

  if (params.get('name')?.trim() && ROLES.includes(params.get('role'))) {
    join({
      name: params.get('name').trim().slice(0, 40),
      role: params.get('role'),
      room: ROOM.test(roomParam ?? '') ? roomParam : 'support',
    });
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
    const client = window.Cometkit.createCometClient({
      url: '/api/comet',
      // The client skips what its build does not have yet and ends on long-poll.
      transports: ['websocket', 'stream', 'longpoll'],
    });
    showConnection(client.getState());
    client.subscribeState(showConnection);
    // What the client decided and why (fallbacks, lowered waits…), for the developer tools.
    client.on('diagnostic', (d) =>
      console.info(`[cometkit] ${d.code}: ${d.message}`, d.detail ?? ''),
    );
    window.addEventListener('pagehide', () => client.close());

    // ids already shown: history, live messages and a refresh after a reset never repeat one.
    const shown = new Set();

    function render(message) {
      if (message.id !== undefined) {
        if (shown.has(message.id)) return;
        shown.add(message.id);
      }
      const data = message.data ?? {};
      const role = ROLES.includes(data.role) ? data.role : 'customer';
      const item = document.createElement('li');
      item.className = `message role-${role}`;
      if (data.name === me.name && data.role === me.role) item.classList.add('mine');
      item.dataset.testid = 'message';
      if (message.id !== undefined) item.dataset.id = message.id;
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
      const text = document.createElement('p');
      text.className = 'text';
      text.dataset.testid = 'message-text';
      text.textContent = String(data.text ?? '');
      item.append(head, text);
      const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
      list.append(item);
      if (atBottom || item.classList.contains('mine')) list.scrollTop = list.scrollHeight;
      forget(data.name, data.role); // a message ends its author's "is typing…"
    }

    async function loadHistory() {
      const response = await fetch(`/api/chat/history?room=${encodeURIComponent(me.room)}`, {
        cache: 'no-store',
      });
      if (!response.ok) throw new Error(`history: the server answered ${response.status}`);
      return response.json();
    }

    // History first, then the topic from right after it: nothing lost, nothing repeated.
    loadHistory()
      .then(({ messages, cursor }) => {
        for (const message of messages) render(message);
        client.subscribe(chatTopic, (_data, message) => render(message), { cursor });
      })
      .catch((error) => {
        showError(`${error.message}; showing new messages only`);
        client.subscribe(chatTopic, (_data, message) => render(message));
      });

    // The server lost our place (e.g. it restarted): show its history again, then go on.
    client.on('reset', (event) => {
      if (event.topic !== chatTopic) return;
      loadHistory()
        .then(({ messages }) => {
          for (const message of messages) render(message);
        })
        .catch(() => {});
    });

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
      if (!data || (data.name === me.name && data.role === me.role)) return;
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
      client.send(chatTopic, { name: me.name, role: me.role, text }).catch((error) => {
        showError(error.message);
        // Give the text back so it can be fixed, unless something new was typed meanwhile.
        if (input.value === '') {
          input.value = text;
          sendButton.disabled = blank();
        }
      });
    });

    input.focus();
  }
})();
