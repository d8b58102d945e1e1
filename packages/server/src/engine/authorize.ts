/**
 * Runs the application's `authorize` hook for polls and sends, and turns a refusal into the
 * error it answers. A throwing or odd hook refuses the topic; it never fails the request.
 */
import type { TopicErrorBody } from '@cometkit/core/protocol';
import { CometServerError } from '../errors';
import type { AuthorizeAction } from '../options';
import type { EngineContext } from './context';
import type { Caller } from './credentials';
import { presenceBase } from './presence';
import { isHookTimeout, timeBox } from './time-box';

/** The topics a request may poll, and the refusals of the others. */
export interface AuthorizedTopics {
  allowed: string[];
  errors: Map<string, TopicErrorBody>;
}

/** Asks the `authorize` hook about every topic of a poll (in parallel). */
export async function authorizeTopics(
  context: EngineContext,
  caller: Caller,
  topics: readonly string[],
): Promise<AuthorizedTopics> {
  if (!context.options.authorize) return { allowed: [...topics], errors: new Map() };
  const verdicts = await Promise.all(
    topics.map((topic) => authorizeTopic(context, caller, 'poll', topic)),
  );
  const allowed: string[] = [];
  const errors = new Map<string, TopicErrorBody>();
  topics.forEach((topic, index) => {
    const verdict = verdicts[index];
    if (verdict === undefined) allowed.push(topic);
    else errors.set(topic, verdict);
  });
  return { allowed, errors };
}

/**
 * Runs `authorize` for one topic: undefined when allowed, else the refusal. Throws only a
 * `503` when the hook takes longer than `hookTimeout` (the request is retried, not refused).
 */
export async function authorizeTopic(
  context: EngineContext,
  { req, sessionGuid, userId, identity }: Caller,
  asked: AuthorizeAction,
  askedTopic: string,
): Promise<TopicErrorBody | undefined> {
  const authorize = context.options.authorize;
  if (!authorize) return undefined;
  // Polling `{topic}@presence` asks about the presence of `topic`.
  const base = asked === 'poll' && context.presence ? presenceBase(askedTopic) : undefined;
  const action = base === undefined ? asked : 'presence';
  const topic = base ?? askedTopic;
  try {
    const verdict = await timeBox(
      'authorize',
      authorize({ req, action, topic, sessionGuid, userId, identity }),
      context.options.hookTimeout,
    );
    if (verdict === true) return undefined;
    if (
      typeof verdict === 'object' &&
      verdict !== null &&
      typeof verdict.code === 'string' &&
      typeof verdict.message === 'string'
    ) {
      return { code: verdict.code, message: verdict.message };
    }
    const what = action === 'presence' ? 'see the presence of' : action;
    return { code: 'forbidden', message: `not allowed to ${what} topic "${topic}"` };
  } catch (error) {
    if (isHookTimeout(error)) {
      context.options.log({
        level: 'error',
        event: 'hook.timeout',
        message: error.message,
        hook: 'authorize',
        topic,
      });
      throw error;
    }
    context.options.log({
      level: 'error',
      event: 'hook.failed',
      message: 'the authorize hook threw; the topic is refused',
      hook: 'authorize',
      topic,
      error,
    });
    return { code: 'internal', message: `could not check access to topic "${topic}"` };
  }
}

/**
 * The error answer of a refusal where the answer has no per-topic `errors` (a send, a legacy
 * poll): `401` for `unauthorized`, `500` for a hook that failed, `403` otherwise.
 */
export function refusalError(refusal: TopicErrorBody | undefined): CometServerError {
  const code = refusal?.code ?? 'forbidden';
  const status = code === 'unauthorized' ? 401 : code === 'internal' ? 500 : 403;
  return new CometServerError(status, code, refusal?.message ?? 'not allowed');
}
