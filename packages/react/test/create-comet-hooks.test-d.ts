import type { CometClient, CometMessage } from '@cometkit/core';
import { describe, expectTypeOf, test } from 'vitest';
import { createCometHooks } from '../src/index';

interface ChatLine {
  name: string;
  text: string;
}
interface Typing {
  name: string;
  typing: boolean;
}
type Topics = { chat: ChatLine; typing: Typing };

const hooks = createCometHooks<Topics>();

describe('createCometHooks<Topics>()', () => {
  test('useTopic infers the payload and topic of a mapped topic', () => {
    hooks.useTopic('chat', (line, message) => {
      expectTypeOf(line).toEqualTypeOf<ChatLine>();
      expectTypeOf(message).toEqualTypeOf<CometMessage<ChatLine, 'chat'>>();
    });
  });

  test('useTopic over several topics gives the union of their payloads', () => {
    hooks.useTopic(['chat', 'typing'], (data, message) => {
      expectTypeOf(data).toEqualTypeOf<ChatLine | Typing>();
      expectTypeOf(message.topic).toEqualTypeOf<'chat' | 'typing'>();
    });
  });

  test('a topic outside the map carries unknown', () => {
    hooks.useTopic('elsewhere', (data) => {
      expectTypeOf(data).toBeUnknown();
    });
    expectTypeOf(hooks.useTopicValue('elsewhere')).toBeUnknown();
  });

  test('useTopicValue and useTopicMessages are typed by the map', () => {
    expectTypeOf(hooks.useTopicValue('chat')).toEqualTypeOf<ChatLine | undefined>();
    expectTypeOf(hooks.useTopicMessages('typing', { keep: 5 })).toEqualTypeOf<
      readonly CometMessage<Typing, 'typing'>[]
    >();
  });

  test('useSend checks the payload of a mapped topic', () => {
    const send = hooks.useSend();
    expectTypeOf(send('chat', { name: 'Ann', text: 'hi' })).toEqualTypeOf<
      Promise<string | undefined>
    >();
    // @ts-expect-error: a chat line needs a text
    send('chat', { name: 'Ann' });
  });

  test('useCometClient returns the typed client', () => {
    expectTypeOf(hooks.useCometClient()).toEqualTypeOf<CometClient<Topics>>();
  });
});
