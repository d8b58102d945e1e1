// Diagnostic: cometkit with the memory broker's per-topic history raised to 25 000 messages, so
// a 20 000-message burst fits (the default history is 1 000 messages per topic).
import base from './cometkit.mjs';

export default {
  ...base,
  name: 'cometkit-h25k',
  async startServer(port) {
    process.env.BENCH_PEERS_HISTORY ||= '25000';
    return base.startServer(port);
  },
};
