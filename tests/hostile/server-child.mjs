// A @cometkit/server in a process of its own, for the hostile-clients test and the figures of
// issue 13: its heap is its own (capped with --max-old-space-size), and the parent asks it for
// it. argv[2]: the built server's entry (dist/index.js); env COMET_OPTIONS: JSON options.
// Prints `port <n>` once listening; answers IPC `heap` with `{heap}` after a full GC.
import { createServer } from 'node:http';

const { createCometServer, createMemoryBroker } = await import(process.argv[2]);
const options = JSON.parse(process.env.COMET_OPTIONS ?? '{}');
// `memoryBroker`: the options of the server's memory broker.
if (options.memoryBroker) {
  options.broker = createMemoryBroker(options.memoryBroker);
  delete options.memoryBroker;
}
const counts = { onSend: 0, onSendMax: 0, reserve: 0 };
// `slowOnSend: ms`: each send takes this long (to topics starting with `slowOnSendPrefix`, all
// when not given): how many run at once is the figure.
if (options.slowOnSend) {
  const ms = options.slowOnSend;
  const prefix = options.slowOnSendPrefix ?? '';
  delete options.slowOnSend;
  delete options.slowOnSendPrefix;
  options.onSend = async ({ topic, data, publish }) => {
    if (!topic.startsWith(prefix)) return publish(topic, data);
    counts.onSend += 1;
    counts.onSendMax = Math.max(counts.onSendMax, counts.onSend);
    try {
      await new Promise((resolve) => setTimeout(resolve, ms));
      return await publish(topic, data);
    } finally {
      counts.onSend -= 1;
    }
  };
}
// `prefill: {topic, count, size}`: history published before listening.
const prefill = options.prefill;
delete options.prefill;
const comet = createCometServer(options);
const reserve = comet.broker.reserve?.bind(comet.broker);
if (reserve) {
  comet.broker.reserve = (...args) => {
    counts.reserve += 1;
    return reserve(...args);
  };
}
const position = prefill ? (await comet.recent(prefill.topic, 0)).position : undefined;
if (prefill) {
  const data = 'x'.repeat(prefill.size);
  for (let index = 0; index < prefill.count; index += 1) await comet.publish(prefill.topic, data);
}
const server = createServer((req, res) => comet.handle(req, res));
comet.attach(server);
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`port ${server.address().port} ${position ?? ''}\n`);
});
let peak = 0;
let peakRss = 0;
setInterval(() => {
  const usage = process.memoryUsage();
  peak = Math.max(peak, usage.heapUsed);
  peakRss = Math.max(peakRss, usage.rss);
}, 20).unref();
process.on('message', (message) => {
  if (message === 'heap') {
    globalThis.gc?.();
    const usage = process.memoryUsage();
    const heap = usage.heapUsed;
    process.send({
      heap,
      peak: Math.max(peak, heap),
      external: usage.external,
      rss: usage.rss,
      peakRss: Math.max(peakRss, usage.rss),
      ...counts,
      stats: comet.stats(),
    });
    peak = 0;
    peakRss = 0;
  }
  if (message === 'exit') process.exit(0);
});
