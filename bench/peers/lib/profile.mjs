// CPU profiles of one phase of a worker (`profStart` / `profStop` RPCs), through the inspector:
// the same .cpuprofile JSON as `node --cpu-prof`, but cut to the phase the suite names (scenario
// C's connect, its rounds), so a summary is not diluted by start-up and idle time.
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';

let session = null;

export const profileHandlers = {
  async profStart({ intervalUs = 200 }) {
    if (session) return false;
    session = new Session();
    session.connect();
    await session.post('Profiler.enable');
    await session.post('Profiler.setSamplingInterval', { interval: intervalUs });
    await session.post('Profiler.start');
    return true;
  },
  async profStop({ file }) {
    if (!session) return false;
    const { profile } = await session.post('Profiler.stop');
    session.disconnect();
    session = null;
    writeFileSync(file, JSON.stringify(profile));
    return file;
  },
};
