/** Checks of the arguments of the public methods: each throws a `CometError` naming the problem. */
import { CometError, TopicError } from './errors';
import { topicProblem } from './protocol';

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

/** One value or an array of them, as a new array. */
export const list = <T>(value: T | readonly T[]): T[] =>
  Array.isArray(value) ? [...value] : [value as T];
