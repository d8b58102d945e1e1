// Express: `node examples/server/express.mjs` (after `pnpm --filter @cometkit/server build`).
import { createCometServer } from '@cometkit/server';
import express from 'express';

const comet = createCometServer();
const app = express();
app.use(comet.handle); // or app.use('/realtime', comet.handle) with createCometServer({ path: '/realtime' })
app.get('/', (_req, res) =>
  res.send(
    'curl -H \'content-type: application/json\' -d \'{"v":1,"sessionGuid":"x","topics":["clock"]}\' localhost:3000/api/comet',
  ),
);
setInterval(() => comet.publish('clock', { now: Date.now() }), 1000).unref();

const server = app.listen(Number(process.env.PORT ?? 3000), process.env.HOST, () =>
  console.log(`comet on http://localhost:${server.address().port}/api/comet`),
);
comet.attach(server); // WebSocket at /api/comet/_ws (the client's first transport)
process.once('SIGTERM', async () => {
  await comet.close();
  server.close();
});
