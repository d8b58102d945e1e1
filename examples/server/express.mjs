// Express: `node examples/server/express.mjs` (after `pnpm --filter @cometkit/server build`).
import { createCometServer } from '@cometkit/server';
import express from 'express';

const comet = createCometServer();
const app = express();
app.use(comet.handle); // or app.use('/realtime', comet.handle) to serve it under /realtime
app.get('/', (_req, res) =>
  res.send(
    'curl -X POST -d \'{"v":1,"sessionGuid":"x","topics":["clock"]}\' localhost:3000/api/comet',
  ),
);
setInterval(() => comet.publish('clock', { now: Date.now() }), 1000).unref();

const server = app.listen(Number(process.env.PORT ?? 3000), () =>
  console.log(`comet on http://localhost:${server.address().port}/api/comet`),
);
process.once('SIGTERM', async () => {
  await comet.close();
  server.close();
});
