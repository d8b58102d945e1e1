// Diagnostic baseline, the seed design in plain node:http + fetch: the client POSTs
// {topics:[...]}, the server holds it up to holdMs and answers the first matching message (one
// message per response; messages between polls are lost, by design). Adapted from the workplace
// harness: the client uses Node's global fetch (its bundled undici, unlimited connections per
// origin, as cometkit's client does) instead of an undici package Agent.
import http from 'node:http';

export function createServer({ holdMs = 60000 } = {}) {
  const byTopic = new Map(); // topic -> Set<waiter>
  let held = 0;
  let dropped = 0;
  const unregister = (w) => {
    if (w.done) return;
    w.done = true;
    held--;
    clearTimeout(w.timer);
    for (const t of w.topics) {
      const s = byTopic.get(t);
      if (s) {
        s.delete(w);
        if (!s.size) byTopic.delete(t);
      }
    }
  };
  const answer = (w, obj) => {
    unregister(w);
    const body = JSON.stringify(obj);
    w.res.writeHead(200, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(body),
    });
    w.res.end(body);
  };
  const server = http.createServer((req, res) => {
    if (req.method !== 'POST' || req.url !== '/api/comet') {
      res.writeHead(404).end();
      return;
    }
    let raw = '';
    req.setEncoding('utf8');
    req.on('data', (c) => {
      raw += c;
    });
    req.on('end', () => {
      let topics;
      try {
        topics = JSON.parse(raw).topics;
      } catch {
        res.writeHead(400).end();
        return;
      }
      if (!Array.isArray(topics)) {
        res.writeHead(400).end();
        return;
      }
      const w = { res, topics, done: false, timer: null };
      held++;
      w.timer = setTimeout(() => answer(w, { reconnect: true }), holdMs);
      for (const t of topics) {
        let s = byTopic.get(t);
        if (!s) {
          s = new Set();
          byTopic.set(t, s);
        }
        s.add(w);
      }
      res.on('close', () => unregister(w)); // client went away
    });
  });
  return {
    server,
    emit(topic, data) {
      const s = byTopic.get(topic);
      if (!s?.size) {
        dropped++;
        return;
      }
      for (const w of [...s]) answer(w, { topic, data });
    },
    stats: () => ({ held, droppedEmits: dropped }),
  };
}

/** The client: a fetch loop that polls again at once after each response. */
export function startPollLoop(url, topics, onMessage) {
  const ac = new AbortController();
  let closed = false;
  (async () => {
    while (!closed) {
      try {
        const r = await fetch(`${url}/api/comet`, {
          method: 'POST',
          body: JSON.stringify({ topics }),
          headers: { 'content-type': 'application/json' },
          signal: ac.signal,
        });
        const m = await r.json();
        if (m && m.topic !== undefined) onMessage(m.topic, m.data);
      } catch {
        if (closed) break;
        await new Promise((res) => setTimeout(res, 100)); // bounded back-off on errors
      }
    }
  })();
  return {
    close() {
      closed = true;
      ac.abort();
    },
  };
}

export default {
  name: 'naive-comet',
  packages: [],
  async startServer(port) {
    const s = createServer({ holdMs: 60000 });
    await new Promise((r) => s.server.listen(port, '127.0.0.1', r));
    return {
      emit: s.emit,
      stats: s.stats,
      close: () =>
        new Promise((r) => {
          s.server.closeAllConnections();
          s.server.close(() => r());
        }),
    };
  },
  // Resolves once the first poll is sent; the suite waits for stats().held before measuring.
  async startClient(url, topics, onMessage) {
    return startPollLoop(url, topics, onMessage);
  },
};
