// DIAGNOSTIC variant of the naive-comet baseline: identical server, but the client loop uses
// node:http.request with a keep-alive Agent (maxSockets Infinity) instead of fetch/undici.
// It separates the cost of the seed *design* from the cost of the fetch client in Node.
import http from 'node:http';
import naive from './naive-comet.mjs';

const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity });

function post(url, body, signalHolder) {
  return new Promise((resolve, reject) => {
    const req = http.request(
      url,
      {
        method: 'POST',
        agent,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      },
      (res) => {
        let raw = '';
        res.setEncoding('utf8');
        res.on('data', (c) => {
          raw += c;
        });
        res.on('end', () => {
          try {
            resolve(JSON.parse(raw));
          } catch (e) {
            reject(e);
          }
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    signalHolder.req = req;
    req.end(body);
  });
}

export default {
  name: 'naive-comet-nodehttp',
  packages: [],
  startServer: naive.startServer,
  async startClient(url, topics, onMessage) {
    let closed = false;
    const holder = { req: null };
    const body = JSON.stringify({ topics });
    (async () => {
      while (!closed) {
        try {
          const m = await post(`${url}/api/comet`, body, holder);
          if (m && m.topic !== undefined) onMessage(m.topic, m.data);
        } catch {
          if (closed) break;
          await new Promise((r) => setTimeout(r, 100));
        }
      }
    })();
    return {
      close() {
        closed = true;
        holder.req?.destroy();
      },
    };
  },
};
