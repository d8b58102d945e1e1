import './setup-angular';
import { Injectable, Injector, PLATFORM_ID } from '@angular/core';
import { TestBed } from '@angular/core/testing';
import { CometError, type CometMessage } from '@cometkit/core';
import type { FakeBackend } from '@cometkit/test-utils';
import { firstValueFrom, type Subscription, take, toArray } from 'rxjs';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { COMET_CLIENT, CometService } from '../src/index';
import { configure, createCometBackend } from './helpers';

let backend: FakeBackend;
const subscriptions: Subscription[] = [];

beforeEach(() => {
  backend = createCometBackend();
});

afterEach(() => {
  for (const subscription of subscriptions.splice(0)) subscription.unsubscribe();
  TestBed.resetTestingModule();
  backend.close();
});

describe('CometService', () => {
  it('is injectable by class with inject() and through a constructor', () => {
    configure();
    // `@Injectable()` applied by hand, with the constructor metadata tsc emits for a decorated
    // class: Angular's JIT reads it to inject by type, as AOT does from the compiled factory.
    class UsesConstructor {
      constructor(readonly comet: CometService) {}
      static ctorParameters = (): { type: unknown }[] => [{ type: CometService }];
    }
    Injectable()(UsesConstructor);
    TestBed.configureTestingModule({ providers: [UsesConstructor] });
    const service = TestBed.inject(CometService);
    expect(service).toBeInstanceOf(CometService);
    expect(TestBed.inject(UsesConstructor).comet).toBe(service);
    expect(service.client).toBe(TestBed.inject(COMET_CLIENT));
  });

  it('state follows the connection: idle, then connected once a topic is subscribed', async () => {
    configure();
    const service = TestBed.inject(CometService);
    expect(service.state()).toEqual({ status: 'idle' });
    subscriptions.push(service.topic$('news').subscribe());
    await vi.waitFor(() => expect(service.state().status).toBe('connected'));
  });

  it('topic() holds the data of the newest message', async () => {
    configure();
    const service = TestBed.inject(CometService);
    const latest = TestBed.runInInjectionContext(() => service.topic<{ n: number }>('news'));
    expect(latest()).toBeUndefined();
    await vi.waitFor(() => expect(backend.held()).toHaveLength(1));
    backend.publish('news', { n: 1 });
    await vi.waitFor(() => expect(latest()).toEqual({ n: 1 }));
    backend.publish('news', { n: 2 });
    await vi.waitFor(() => expect(latest()).toEqual({ n: 2 }));
  });

  it('topicMessages() keeps the last `keep` messages, oldest first', async () => {
    configure();
    const service = TestBed.inject(CometService);
    const recent = TestBed.runInInjectionContext(() =>
      service.topicMessages<string>('news', { keep: 2 }),
    );
    await vi.waitFor(() => expect(backend.held()).toHaveLength(1));
    for (const text of ['a', 'b', 'c']) backend.publish('news', text);
    await vi.waitFor(() => expect(recent().map((message) => message.data)).toEqual(['b', 'c']));
  });

  it('topic() outside an injection context needs an injector', async () => {
    configure();
    const service = TestBed.inject(CometService);
    expect(() => service.topic('news')).toThrow(/injection context/);
    const latest = service.topic<string>('news', { injector: TestBed.inject(Injector) });
    await vi.waitFor(() => expect(backend.held()).toHaveLength(1));
    backend.publish('news', 'hello');
    await vi.waitFor(() => expect(latest()).toBe('hello'));
  });

  it('topic$ emits each message once, in order, and releases the topic on unsubscribe', async () => {
    configure();
    const service = TestBed.inject(CometService);
    const received = firstValueFrom(service.topic$<number>('count').pipe(take(3), toArray()));
    await vi.waitFor(() => expect(backend.held()).toHaveLength(1));
    const poll = backend.held()[0];
    backend.publish('count', 1);
    backend.publish('count', 2);
    backend.publish('count', 3);
    expect(await received).toEqual([1, 2, 3]);
    // take(3) unsubscribed: the client stops polling (idleGrace 0) and aborts what it held.
    await vi.waitFor(() => expect(service.state()).toEqual({ status: 'idle' }));
    expect(backend.held()).toHaveLength(0);
    expect(poll?.answered).toBe(true);
  });

  it('messages$ with a cursor continues right after a message the application has', async () => {
    configure();
    const service = TestBed.inject(CometService);
    backend.publish('chat', 'old 1');
    const cursor = backend.publish('chat', 'old 2');
    backend.publish('chat', 'missed while loading');
    const received = firstValueFrom(
      service.messages$<string>('chat', { cursor }).pipe(take(2), toArray()),
    );
    await vi.waitFor(() => expect(backend.held()).toHaveLength(1));
    backend.publish('chat', 'live');
    const messages: CometMessage<string>[] = await received;
    expect(messages.map((message) => message.data)).toEqual(['missed while loading', 'live']);
    expect(messages[0]).toMatchObject({ topic: 'chat', id: expect.any(String) });
  });

  it('state$ emits the current state, then each change', async () => {
    configure();
    const service = TestBed.inject(CometService);
    const states: string[] = [];
    subscriptions.push(service.state$.subscribe((state) => states.push(state.status)));
    expect(states).toEqual(['idle']);
    subscriptions.push(service.topic$('news').subscribe());
    await vi.waitFor(() => expect(states.at(-1)).toBe('connected'));
    expect(states[1]).toBe('connecting');
  });

  it('completes open observables when the application is destroyed', async () => {
    configure();
    const service = TestBed.inject(CometService);
    let completed = false;
    service.topic$('news').subscribe({ complete: () => (completed = true) });
    await vi.waitFor(() => expect(backend.held()).toHaveLength(1));
    TestBed.resetTestingModule();
    expect(completed).toBe(true);
    await vi.waitFor(() => expect(backend.held()).toHaveLength(0));
  });

  it('send resolves with the broker id, and rejects with the server error on a 400', async () => {
    configure();
    const service = TestBed.inject(CometService);
    const id = await service.send('chat', { text: 'hi' });
    expect(id).toEqual(expect.any(String));
    expect(backend.sends).toHaveLength(1);
    const error = await service.send('chat', { text: '' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CometError);
    expect((error as CometError).message).toContain('text must be 1 to 2000 characters');
  });

  it('reconnect() drops the held poll and polls again', async () => {
    configure();
    const service = TestBed.inject(CometService);
    subscriptions.push(service.topic$('news').subscribe());
    await vi.waitFor(() => expect(backend.held()).toHaveLength(1));
    const held = backend.held()[0];
    service.reconnect('test');
    await vi.waitFor(() => expect(held?.aborted).toBe(true));
    await vi.waitFor(() => expect(backend.held()).toHaveLength(1));
    expect(backend.held()[0]).not.toBe(held);
  });

  it('topic$ errors, rather than throws, for an invalid topic name', () => {
    configure();
    const service = TestBed.inject(CometService);
    let failure: unknown;
    subscriptions.push(service.topic$('_reserved').subscribe({ error: (e) => (failure = e) }));
    expect(failure).toBeInstanceOf(CometError);
  });

  it('subscribes to nothing while rendering on the server', async () => {
    configure([{ provide: PLATFORM_ID, useValue: 'server' }]);
    const service = TestBed.inject(CometService);
    const latest = TestBed.runInInjectionContext(() => service.topic('news'));
    subscriptions.push(service.topic$('sports').subscribe());
    // The client itself still works: a direct subscription polls, without the service's topics.
    const stop = service.client.subscribe('probe', () => {});
    await vi.waitFor(() => expect(backend.held()).toHaveLength(1));
    stop();
    expect(backend.polls.flatMap((poll) => poll.topics)).not.toContain('news');
    expect(backend.polls.flatMap((poll) => poll.topics)).not.toContain('sports');
    expect(latest()).toBeUndefined();
  });
});
