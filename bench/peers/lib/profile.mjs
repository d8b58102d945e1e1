// CPU profiles of one phase of a worker (`profStart` / `profStop` RPCs), through the inspector:
// the same .cpuprofile JSON as `node --cpu-prof`, but cut to the phase the suite names (scenario
// C's connect, its rounds), so a summary is not diluted by start-up and idle time.
// With BENCH_PEERS_PROFILE_KIND=heap the phase gets an allocation profile instead (.heapprofile,
// every sampled allocation, also those the GC has collected since: where the GC's work comes from).
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';

const heap = process.env.BENCH_PEERS_PROFILE_KIND === 'heap';
let session = null;

export const profileHandlers = {
  async profStart({ intervalUs = 200 }) {
    if (session) return false;
    session = new Session();
    session.connect();
    if (heap) {
      await session.post('HeapProfiler.enable');
      await session.post('HeapProfiler.startSampling', {
        samplingInterval: 1024,
        includeObjectsCollectedByMajorGC: true,
        includeObjectsCollectedByMinorGC: true,
      });
      return true;
    }
    await session.post('Profiler.enable');
    await session.post('Profiler.setSamplingInterval', { interval: intervalUs });
    await session.post('Profiler.start');
    return true;
  },
  async profStop({ file }) {
    if (!session) return false;
    const { profile } = heap
      ? await session.post('HeapProfiler.stopSampling')
      : await session.post('Profiler.stop');
    session.disconnect();
    session = null;
    const out = heap ? file.replace(/\.cpuprofile$/, '.heapprofile') : file;
    writeFileSync(out, JSON.stringify(profile));
    return out;
  },
};
