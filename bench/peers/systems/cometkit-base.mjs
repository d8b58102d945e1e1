// Diagnostic: cometkit as built before a change, to compare before and after in one run on a
// shared machine. Copy the builds first (`pnpm build`, then `cp -r packages/core/dist
// packages/core/dist-base` and the same for server), change, build again, and run with
// BENCH_PEERS_SYSTEMS=cometkit-base,cometkit,...; the copies are not committed. BENCH_PEERS_BASE
// names another directory than dist-base (e.g. dist-prev).
import { existsSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'packages');
const dir = process.env.BENCH_PEERS_BASE ?? 'dist-base';
// The Node entry where the build has one (as `import '@cometkit/core'` resolves in Node).
const load = (pkg) => {
  const node = path.join(root, pkg, dir, 'node.js');
  const file = existsSync(node) ? node : path.join(root, pkg, dir, 'index.js');
  return import(pathToFileURL(file).href);
};

export default {
  name: 'cometkit-base',
  packages: ['@cometkit/core', '@cometkit/server'],
  async startServer(port) {
    const { createCometServer } = await load('server');
    const comet = createCometServer({});
    const server = http.createServer((req, res) => comet.handle(req, res));
    await new Promise((r) => server.listen(port, '127.0.0.1', r));
    return {
      emit: (topic, data) => {
        comet.publish(topic, data);
      },
      stats: () => comet.stats(),
      close: async () => {
        await comet.close();
        server.closeAllConnections();
        await new Promise((r) => server.close(r));
      },
    };
  },
  async startClient(url, topics, onMessage) {
    const { createCometClient } = await load('core');
    const client = createCometClient({ url: `${url}/api/comet`, transports: ['longpoll'] });
    for (const t of topics) client.subscribe(t, (data) => onMessage(t, data));
    const until = Date.now() + 10_000;
    while (client.getState().status !== 'connected' && Date.now() < until) {
      await new Promise((r) => setTimeout(r, 10));
    }
    if (client.getState().status !== 'connected') throw new Error('cometkit-base: not connected');
    return { close: () => client.close() };
  },
};
