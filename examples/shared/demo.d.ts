// Types of demo.js, the part of the demo that the three UIs share besides demo.css.
import type { CometClient, ConnectionState } from '@cometkit/core';

/** A room id: 1 to 40 of a-z, 0-9 and `-`. */
export declare const ROOM: RegExp;
/** The room used when the address names none. */
export declare const DEFAULT_ROOM: string;
/** How many earlier lines a UI shows when it joins a room (its rewind). */
export declare const HISTORY_LINES: number;

/** The longest name the server takes. */
export declare const NAME_MAX: number;

/** Why a join cannot go ahead (which field, a sentence), or undefined when it can. */
export declare function joinProblem(join: {
  room: string;
  name: string;
}): { field: 'room' | 'name'; message: string } | undefined;

/** The join form's starting values from the address, and whether to join at once. */
export declare function readQuery(search: string): {
  room: string;
  name: string;
  role: 'agent' | 'customer';
  /** Set when the address names a room that is not one. */
  problem: string | undefined;
  join: boolean;
};

/** `connected · websocket`, `reconnecting (attempt 2)`… */
export declare function describeState(state: ConnectionState): string;

/** What the connection panel shows. */
export interface ConnectionReport {
  state: ConnectionState;
  /** The status pill's text. */
  summary: string;
  /** The transport last connected on. */
  transport: string | undefined;
  /** Why it is that transport, from the client's diagnostics. */
  why: string | undefined;
  /** The long-poll wait the client learned (a `wait-lowered` diagnostic), in ms. */
  waitMs: number | undefined;
  /** How many times the connection went to `reconnecting`. */
  reconnects: number;
  /** The last reconnect reasons, oldest first. */
  reasons: readonly string[];
  /** The client's last decisions (`code: message`), oldest first. */
  events: readonly { id: number; text: string }[];
}

/** An external store over a client's state and diagnostics. */
export interface ConnectionReportStore {
  subscribe(onChange: () => void): () => void;
  getSnapshot(): ConnectionReport;
  stop(): void;
}

/** Follows `client` from now on; create it with the client. */
export declare function createConnectionReport(
  client: Pick<CometClient, 'getState' | 'subscribeState' | 'on'>,
): ConnectionReportStore;

/** The panel's wait line. */
export declare function describeWait(waitMs: number | undefined): string;

/** The request header that tells the server who this page is in the presence list. */
export declare const MEMBER_HEADER: string;

/** Remembers the joined name and role for the server's presence hook (see memberHeaders). */
export declare function rememberMember(member: { name: string; role: string }): void;

/** The client's `headers` option: who this page is, once it joined (read on each request). */
export declare function memberHeaders(): Record<string, string>;

/** The presence line: `Online (2): Ann (agent), Bob (customer)`, each person once. */
export declare function describeOnline(
  members: readonly { userId?: string; data?: unknown }[],
): string;
