/**
 * How many bytes the memory broker's history takes per message, to size a history by bytes that
 * holds the peers suite's burst (20 000 x ~100-byte JSON messages). Publishes through the real
 * server (createCometServer + createMemoryBroker) into one topic, with a distinct 60-character pad
 * per message (the suite's burst shares one pad string, which would undercount), and reads the
 * JS heap and the memory of `Buffer`s (where the memory broker keeps each message's wire bytes)
 * after gc() before and after.
 *
 * Usage: pnpm build && node --expose-gc bench/peers/history-bytes.mjs [count=20000]
 */
import { createCometServer, createMemoryBroker } from '@cometkit/server';

if (!globalThis.gc) throw new Error('run with node --expose-gc');
const count = Number(process.argv[2] || 20000);
const heap = () => {
  globalThis.gc();
  globalThis.gc();
  const { heapUsed, arrayBuffers } = process.memoryUsage();
  return { heapUsed, arrayBuffers };
};

const comet = createCometServer({ broker: createMemoryBroker({ historySize: count }) });
await comet.publish('warm', { seq: 0 }); // lazy structures of a first publish
const before = heap();
let wire = 0;
for (let i = 0; i < count; i++) {
  const data = { seq: i, ts: performance.now(), p: `${i}`.padStart(60, 'x') };
  wire += Buffer.byteLength(JSON.stringify(data));
  await comet.publish('t', data);
}
const after = heap();
const heapGrew = after.heapUsed - before.heapUsed;
const buffersGrew = after.arrayBuffers - before.arrayBuffers;
const perMessage = (heapGrew + buffersGrew) / count;
const mb = (bytes) => (bytes / 1048576).toFixed(2);
console.log(
  `${count} messages, ${(wire / count).toFixed(0)} B of JSON each: heap +${mb(heapGrew)} MB, buffers +${mb(buffersGrew)} MB, ${perMessage.toFixed(0)} B per message in history (${(perMessage / (wire / count)).toFixed(2)}x its JSON)`,
);
await comet.close();
