// node:http: `node examples/server/node-http.mjs` (after `pnpm --filter @cometkit/server build`).
import { createServer } from 'node:http';
import { createCometServer } from '@cometkit/server';

const comet = createCometServer(); // serves POST /api/comet and POST /api/comet/{topic}
const server = createServer(comet.handle);
comet.attach(server); // WebSocket at /api/comet/_ws (the client's first transport)
server.listen(Number(process.env.PORT ?? 3000), process.env.HOST, () =>
  console.log(`comet on http://localhost:${server.address().port}/api/comet`),
);
setInterval(() => comet.publish('clock', { now: Date.now() }), 1000).unref();

// Drain on shutdown: held polls are answered with `reconnect` so clients lose nothing.
process.once('SIGTERM', async () => {
  await comet.close();
  server.close();
});
