// Faye (Bayeux) NodeAdapter + Faye.Client with websocket and eventsource disabled,
// so the client uses HTTP long-polling (NodeHttp transport, POST /meta/connect held).
// Faye's Node client uses http.globalAgent (Node 20: keepAlive, maxSockets Infinity).
import http from 'node:http';
import faye from 'faye';

const HOLD_S = 60; // server long-poll hold, same as the naive baseline's holdMs

export default {
  name: 'faye',
  packages: ['faye'],
  async startServer(port) {
    const bayeux = new faye.NodeAdapter({ mount: '/faye', timeout: HOLD_S });
    const server = http.createServer();
    bayeux.attach(server);
    let subs = 0;
    bayeux.on('subscribe', () => {
      subs++;
    });
    bayeux.on('unsubscribe', () => {
      subs--;
    });
    await new Promise((r) => server.listen(port, '127.0.0.1', r));
    const local = bayeux.getClient(); // in-process server-side publisher
    // Warm the publisher once: its very first publish goes through a lazy handshake path and
    // otherwise arrives after later messages (observed: seq 0 delivered after seq 99).
    await new Promise((res) => local.publish('/_warmup', {}).then(res, res));
    return {
      emit(topic, data) {
        local.publish(`/${topic}`, data);
      },
      stats: () => ({ subscriptions: subs }),
      close: () =>
        new Promise((r) => {
          try {
            bayeux.close();
          } catch {}
          server.closeAllConnections();
          server.close(() => r());
        }),
    };
  },
  async startClient(url, topics, onMessage) {
    const client = new faye.Client(`${url}/faye`, { timeout: HOLD_S + 20, retry: 1 });
    client.disable('websocket');
    client.disable('eventsource');
    const subs = topics.map((t) => client.subscribe(`/${t}`, (data) => onMessage(t, data)));
    await Promise.all(subs.map((s) => new Promise((res, rej) => s.then(res, rej))));
    return {
      close() {
        client.disconnect();
      },
    };
  },
};
