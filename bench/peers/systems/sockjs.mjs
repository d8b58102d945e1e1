// SockJS server ('sockjs') + 'sockjs-client' in Node restricted to the xhr-polling transport
// (server websocket disabled). sockjs-client's Node XHR driver uses http.globalAgent.
// Topic routing is done by this adapter: the client sends {"sub":[...]} and the server acks.
import http from 'node:http';
import sockjs from 'sockjs';
import SockJS from 'sockjs-client';

export default {
  name: 'sockjs',
  packages: ['sockjs', 'sockjs-client'],
  async startServer(port) {
    const byTopic = new Map();
    const srv = sockjs.createServer({ prefix: '/sockjs', websocket: false, log: () => {} });
    srv.on('connection', (conn) => {
      if (!conn) return;
      const mine = new Set();
      conn.on('data', (msg) => {
        let m;
        try {
          m = JSON.parse(msg);
        } catch {
          return;
        }
        if (Array.isArray(m.sub)) {
          for (const t of m.sub) {
            let s = byTopic.get(t);
            if (!s) {
              s = new Set();
              byTopic.set(t, s);
            }
            s.add(conn);
            mine.add(t);
          }
          conn.write('{"ack":1}');
        }
      });
      conn.on('close', () => {
        for (const t of mine) byTopic.get(t)?.delete(conn);
      });
    });
    const server = http.createServer();
    srv.installHandlers(server);
    await new Promise((r) => server.listen(port, '127.0.0.1', r));
    return {
      emit(topic, data) {
        const s = byTopic.get(topic);
        if (!s) return;
        const frame = JSON.stringify({ topic, data });
        for (const c of s) c.write(frame);
      },
      stats: () => ({ subscribers: [...byTopic.values()].reduce((a, s) => a + s.size, 0) }),
      close: () =>
        new Promise((r) => {
          server.closeAllConnections();
          server.close(() => r());
        }),
    };
  },
  async startClient(url, topics, onMessage) {
    const sock = new SockJS(`${url}/sockjs`, null, { transports: ['xhr-polling'] });
    await new Promise((resolve, reject) => {
      sock.onopen = () => sock.send(JSON.stringify({ sub: topics }));
      sock.onclose = (e) => reject(new Error(`sockjs closed ${e?.code} ${e?.reason}`));
      sock.onmessage = (e) => {
        const m = JSON.parse(e.data);
        if (m.ack) {
          resolve();
          return;
        }
        onMessage(m.topic, m.data);
      };
    });
    sock.onclose = null;
    return {
      close() {
        sock.close();
      },
    };
  },
};
