// The Angular chat's types and its binding of the demo's shared connection report.
import { DestroyRef, InjectionToken, inject, type Signal, signal } from '@angular/core';
import { COMET_CLIENT } from '@cometkit/angular';
import { type ConnectionReport, createConnectionReport } from '../../../shared/demo.js';

/** Who is talking. */
export type Role = 'agent' | 'customer';

/** A chat message's data on `chat:{room}`, as the server publishes it. */
export interface ChatData {
  name: string;
  role: Role;
  text: string;
  sentAt: number;
}

/** A line of the chat list. */
export interface ChatLine extends ChatData {
  id: string;
}

/** A message's data on `typing:{room}`. */
export interface TypingData {
  name: string;
  role: Role;
  typing: boolean;
}

/** Who joined which room. */
export interface Member {
  room: string;
  name: string;
  role: Role;
}

/** The connection report as a signal: one subscription to the shared store, created at start. */
export const CONNECTION_REPORT = new InjectionToken<Signal<ConnectionReport>>('CONNECTION_REPORT', {
  providedIn: 'root',
  factory: () => {
    const store = createConnectionReport(inject(COMET_CLIENT));
    const report = signal(store.getSnapshot());
    store.subscribe(() => report.set(store.getSnapshot()));
    inject(DestroyRef).onDestroy(() => store.stop());
    return report.asReadonly();
  },
});
