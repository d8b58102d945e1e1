/**
 * The client's events: emitted so that a listener that throws never breaks the client or the
 * other listeners (it is reported through `reportError` and a `listener-error` diagnostic).
 */
import EventEmitter from 'eventemitter3';
import type { CometEvents, Diagnostic } from './types';

/** The event surface the client's modules share. */
export interface ClientEvents {
  /** Calls every listener of `event`, each isolated. */
  emit<E extends keyof CometEvents>(event: E, ...args: Parameters<CometEvents[E]>): void;
  /** Emits a `diagnostic`. */
  diagnostic(code: string, message: string, detail?: Diagnostic['detail']): void;
  /** Calls one listener, isolated like `emit` does (topic callbacks, store listeners). */
  call<A extends unknown[]>(listener: (...args: A) => void, args: A, event?: string): void;
  /** Adds a listener; returns the function that removes it. */
  on<E extends keyof CometEvents>(event: E, listener: CometEvents[E]): () => void;
  /** Removes every listener. */
  clear(): void;
}

/** Makes the event surface of one client. */
export function createEvents(): ClientEvents {
  // Untyped inside: `emit` and `on` are the typed surface.
  const emitter = new EventEmitter();
  const events: ClientEvents = {
    emit(event, ...args) {
      for (const listener of emitter.listeners(event))
        events.call(listener as (...params: typeof args) => void, args, event);
    },
    diagnostic(code, message, detail) {
      events.emit('diagnostic', { code, message, detail });
    },
    call(listener, args, event) {
      try {
        listener(...args);
      } catch (error) {
        const report = (globalThis as { reportError?: (error: unknown) => void }).reportError;
        if (report) report(error);
        if (event !== 'diagnostic')
          events.diagnostic('listener-error', 'a listener threw', { error });
      }
    },
    on(event, listener) {
      emitter.on(event, listener);
      return () => {
        emitter.off(event, listener);
      };
    },
    clear() {
      emitter.removeAllListeners();
    },
  };
  return events;
}
