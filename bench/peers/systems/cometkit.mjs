// cometkit, the project under test: this workspace's built @cometkit/server and @cometkit/core
// (`pnpm build` first) with their default options, long-poll only (the deployment this project
// exists for refuses WebSocket and buffers streams). BENCH_PEERS_HISTORY=n sizes the memory
// broker's per-topic history in messages (the `cometkit-h25k` system sets 25 000).
import http from 'node:http';

export default {
  name: 'cometkit',
  packages: ['@cometkit/core', '@cometkit/server'],
  async startServer(port) {
    const { createCometServer, createMemoryBroker } = await import('@cometkit/server');
    const history = Number(process.env.BENCH_PEERS_HISTORY) || 0;
    const comet = createCometServer(
      history ? { broker: createMemoryBroker({ historySize: history }) } : {},
    );
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
  startClient: (url, topics, onMessage) => startClient(url, topics, onMessage),
};

/** One cometkit client on `topics`, connected; `extra` adds client options (diagnostics). */
export async function startClient(url, topics, onMessage, extra = {}) {
  const { createCometClient } = await import('@cometkit/core');
  const client = createCometClient({ url: `${url}/api/comet`, transports: ['longpoll'], ...extra });
  for (const t of topics) client.subscribe(t, (data) => onMessage(t, data));
  const until = Date.now() + 10_000;
  while (client.getState().status !== 'connected' && Date.now() < until) {
    await new Promise((r) => setTimeout(r, 10));
  }
  if (client.getState().status !== 'connected') throw new Error('cometkit: not connected in 10 s');
  return { close: () => client.close() };
}
