// Fastify: `node examples/server/fastify.mjs` (after `pnpm --filter @cometkit/server build`).
import { createCometServer } from '@cometkit/server';
import Fastify from 'fastify';

const comet = createCometServer();
const app = Fastify();
// In a scope of its own: Fastify leaves the body to cometkit (its limits, its 400/413 answers).
await app.register(async (scope) => {
  scope.removeAllContentTypeParsers();
  scope.addContentTypeParser('*', (_request, _payload, done) => done(null));
  const handler = (request, reply) => {
    reply.hijack();
    comet.handle(request.raw, reply.raw);
  };
  scope.all('/api/comet', handler);
  scope.all('/api/comet/*', handler);
});
comet.attach(app.server); // WebSocket at /api/comet/_ws (the client's first transport)
setInterval(() => comet.publish('clock', { now: Date.now() }), 1000).unref();

await app.listen({ port: Number(process.env.PORT ?? 3000), host: process.env.HOST });
console.log(`comet on http://localhost:${app.server.address().port}/api/comet`);
process.once('SIGTERM', async () => {
  await comet.close();
  await app.close();
});
