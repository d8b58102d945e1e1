import type { CometClient, TopicMap } from '@cometkit/core';

/**
 * Augment this interface once in an application to type every hook by its client's topic map,
 * the way TanStack Query's and TanStack Router's `Register` work:
 *
 * ```ts
 * declare module '@cometkit/react' {
 *   interface Register {
 *     client: typeof client;
 *   }
 * }
 * ```
 *
 * Without it, every topic carries `unknown`. For several clients with different maps in one
 * application, use {@link createCometHooks} instead.
 */
// biome-ignore lint/suspicious/noEmptyInterface: applications augment it (declaration merging).
export interface Register {}

/** The topic map of the registered client, or {@link TopicMap} when none is registered. */
export type RegisteredTopics = Register extends { client: CometClient<infer Topics> }
  ? Topics
  : TopicMap;
