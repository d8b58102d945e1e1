/**
 * `@cometkit/core` in Node (the package's `node` export condition): the same API, with polls and
 * sends posted on keep-alive TCP/TLS connections (`node-http.ts`) instead of ky and fetch,
 * unless the options inject their own `environment.fetch` or `environment.post`. Browsers and
 * bundlers for the browser never see this file.
 */
import { createCometClient as createClient } from './client';
import type { CometEnvironment } from './environment';
import { createNodePost } from './node-http';
import type { CometClientOptions } from './options';
import type { CometClient, TopicMap } from './types';

export * from './index';

/**
 * Timers where 0 ms is `setImmediate` (Node's `setTimeout(0)` waits 1 ms, and runs before the
 * turn's I/O): the re-poll after an answer then goes out right after the answers that came
 * in the same turn were delivered.
 */
const immediates = new WeakSet<object>();
const nodeTimers: Pick<CometEnvironment, 'setTimeout' | 'clearTimeout'> = {
  setTimeout(callback, ms) {
    if (ms > 0) return setTimeout(callback, ms);
    const immediate = setImmediate(callback);
    immediates.add(immediate);
    return immediate;
  },
  clearTimeout(handle) {
    // clearImmediate must never see a Timeout (it would miscount Node's pending immediates).
    if (immediates.has(handle as object)) clearImmediate(handle as NodeJS.Immediate);
    else clearTimeout(handle as NodeJS.Timeout);
  },
};

/**
 * Creates a client (see the browser entry's `createCometClient`); in Node, its polls and sends
 * go over keep-alive TCP/TLS connections unless `environment.fetch` or `environment.post` is
 * given. Nothing runs until the first `subscribe` or `send`.
 * @throws `CometError` for an invalid option.
 */
export function createCometClient<Topics extends TopicMap = TopicMap>(
  options?: CometClientOptions,
): CometClient<Topics> {
  const environment = options?.environment;
  if (environment?.fetch !== undefined || environment?.post !== undefined) {
    return createClient<Topics>(options);
  }
  const post = createNodePost();
  const client = createClient<Topics>({
    ...options,
    environment: { ...nodeTimers, ...environment, post },
  });
  const close = client.close;
  // The client's own connections close with it (idle ones would wait for the server's timeout).
  client.close = () => {
    close();
    post.destroy();
  };
  return client;
}
