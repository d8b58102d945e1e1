/** Checks of the arguments of the public methods: each throws a `CometError` naming the problem. */
import { CometError, TopicError } from './errors';
import { type RewindSpec, topicProblem } from './protocol';

/** The error for an invalid topic name, or undefined when it is valid. */
export const topicError = (topic: unknown): TopicError | undefined => {
  const problem = topicProblem(topic);
  return problem === undefined ? undefined : new TopicError(String(topic), problem);
};

/** Throws the error of the first invalid topic. */
export function checkTopics(topics: readonly unknown[]): void {
  for (const topic of topics) {
    const error = topicError(topic);
    if (error) throw error;
  }
}

/** The `cursor` option, checked. */
export const checkCursor = (options?: { cursor?: string }): string | undefined => {
  const cursor = options?.cursor;
  if (cursor !== undefined && typeof cursor !== 'string')
    throw new CometError('cursor must be a string');
  return cursor;
};

/** Where a new topic starts: a cursor and/or a rewind. */
export interface TopicStart {
  cursor?: string;
  rewind?: RewindSpec;
}

/** The `cursor`, `rewind` and `since` options, checked into a {@link TopicStart}. */
export const checkStart = (options?: {
  cursor?: string;
  rewind?: number;
  since?: number;
}): TopicStart => {
  const cursor = checkCursor(options);
  const rewind: RewindSpec = {};
  for (const key of ['rewind', 'since'] as const) {
    const value = options?.[key];
    if (value === undefined) continue;
    if (!Number.isSafeInteger(value) || value < 1)
      throw new CometError(`${key} must be a positive integer: ${value}`);
    rewind[key === 'rewind' ? 'count' : 'since'] = value;
  }
  return rewind.count || rewind.since ? { cursor, rewind } : { cursor };
};

/** One value or an array of them, as a new array. */
export const list = <T>(value: T | readonly T[]): T[] =>
  Array.isArray(value) ? [...value] : [value as T];
