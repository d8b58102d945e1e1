/**
 * `@cometkit/core` in Node (the package's `node` export condition): the same API, with polls and
 * sends posted on keep-alive TCP/TLS connections (`node-http.ts`) instead of ky and fetch,
 * unless the options inject their own `environment.fetch` or `environment.post`. Browsers and
 * bundlers for the browser never see this file.
 */
import { createCometClient as createClient } from './client';
import { createNodePost, nodeTimers } from './node-http';
import type { CometClientOptions } from './options';
import type { CometClient, TopicMap } from './types';

export * from './index';

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
