import type { CometClient, CometMessage, ConnectionState } from '@cometkit/core';
import { describe, expectTypeOf, test } from 'vitest';
import {
  CometProvider,
  useCometClient,
  useConnectionState,
  useSend,
  useTopic,
  useTopicMessages,
  useTopicValue,
} from '../src/index';

interface ChatLine {
  name: string;
  text: string;
}
type Topics = { chat: ChatLine; price: number };

declare const client: CometClient<Topics>;

// What an application writes once: every hook is then typed by its client's topic map.
declare module '../src/index' {
  interface Register {
    client: typeof client;
  }
}

describe('a registered client types the plain hooks', () => {
  test('useTopic infers the payload from the client', () => {
    useTopic('chat', (line, message) => {
      expectTypeOf(line).toEqualTypeOf<ChatLine>();
      expectTypeOf(message).toEqualTypeOf<CometMessage<ChatLine, 'chat'>>();
    });
    // @ts-expect-error: the handler of a price takes a number
    useTopic('price', (price: string) => price);
  });

  test('useTopicValue, useTopicMessages and useSend follow the map', () => {
    expectTypeOf(useTopicValue('price')).toEqualTypeOf<number | undefined>();
    expectTypeOf(useTopicMessages('chat')).toEqualTypeOf<
      readonly CometMessage<ChatLine, 'chat'>[]
    >();
    const send = useSend();
    // @ts-expect-error: a price is a number
    send('price', 'cheap');
    expectTypeOf(useCometClient()).toEqualTypeOf<CometClient<Topics>>();
    expectTypeOf(useConnectionState()).toEqualTypeOf<ConnectionState>();
  });

  test('the provider takes the registered client', () => {
    expectTypeOf(<CometProvider client={client}>{null}</CometProvider>).not.toBeAny();
    // @ts-expect-error: a client or options, not both
    <CometProvider client={client} options={{}} />;
  });
});
