// A worker that publishes through Redis, with no HTTP server and no cometkit server of its own:
// `REDIS_URL=redis://127.0.0.1:6379 node examples/worker-publish/worker.mjs` (after `pnpm build`).
// Every server instance on that Redis (same `keyPrefix`) delivers what it publishes to its
// clients. Each message has an id made from the job, so running the job again (a retry after a
// crash) publishes nothing twice.
import { createRedisPublisher } from '@cometkit/redis';

const job = process.env.JOB_ID ?? `report-${new Date().toISOString().slice(0, 10)}`;
const topic = process.env.TOPIC ?? 'reports';
const count = Number(process.env.COUNT ?? 3);

const publisher = createRedisPublisher({
  redis: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
  keyPrefix: process.env.KEY_PREFIX ?? 'cometkit:',
});
try {
  for (let step = 1; step <= count; step += 1) {
    const messageId = await publisher.publish(
      topic,
      { job, step, of: count },
      { id: `${job}:${step}` },
    );
    console.log(`published ${topic} ${job} step ${step}/${count} as ${messageId}`);
  }
} finally {
  await publisher.close();
}
