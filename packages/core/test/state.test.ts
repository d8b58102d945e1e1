import { describe, expect, it } from 'vitest';
import { CometError } from '../src/errors';
import { IDLE, nextAttempt, reduce, type StateEvent } from '../src/state';
import type { ConnectionState } from '../src/types';

const error = new CometError('boom');
const connecting0: ConnectionState = { status: 'connecting', transport: 'longpoll', attempt: 0 };
const connecting2: ConnectionState = { status: 'connecting', transport: 'longpoll', attempt: 2 };
const connected: ConnectionState = { status: 'connected', transport: 'longpoll' };
const reconnecting2: ConnectionState = {
  status: 'reconnecting',
  attempt: 2,
  retryInMs: 100,
  error,
};
const offline: ConnectionState = { status: 'offline' };
const failed: ConnectionState = { status: 'failed', error };
const closed: ConnectionState = { status: 'closed' };

const connect: StateEvent = { type: 'connect', transport: 'longpoll' };
const restart: StateEvent = { type: 'connect', transport: 'longpoll', restart: true };
const open: StateEvent = { type: 'open', transport: 'longpoll' };
const retry: StateEvent = { type: 'retry', error, retryInMs: 250 };

describe('reduce', () => {
  const table: [string, ConnectionState, StateEvent, ConnectionState | 'same'][] = [
    ['idle + connect -> connecting attempt 0', IDLE, connect, connecting0],
    ['connecting + open -> connected', connecting0, open, connected],
    ['connected + connect (re-poll) stays connected', connected, connect, 'same'],
    ['connected + restart -> connecting attempt 0', connected, restart, connecting0],
    ['connecting + same connect stays', connecting2, connect, 'same'],
    [
      'connected + retry -> reconnecting attempt 1',
      connected,
      retry,
      { status: 'reconnecting', attempt: 1, retryInMs: 250, error },
    ],
    [
      'connecting 0 + retry -> reconnecting 1',
      connecting0,
      retry,
      { status: 'reconnecting', attempt: 1, retryInMs: 250, error },
    ],
    ['reconnecting 2 + connect -> connecting 2', reconnecting2, connect, connecting2],
    [
      'connecting 2 + retry -> reconnecting 3',
      connecting2,
      retry,
      { status: 'reconnecting', attempt: 3, retryInMs: 250, error },
    ],
    ['connected + open stays', connected, open, 'same'],
    ['connected + offline -> offline', connected, { type: 'offline' }, offline],
    ['reconnecting + offline -> offline', reconnecting2, { type: 'offline' }, offline],
    ['offline + offline stays', offline, { type: 'offline' }, 'same'],
    ['idle + offline (starting without network) -> offline', IDLE, { type: 'offline' }, offline],
    ['offline + restart -> connecting 0', offline, restart, connecting0],
    ['connected + fail -> failed', connected, { type: 'fail', error }, failed],
    ['failed + connect stays failed', failed, connect, 'same'],
    ['failed + retry stays failed', failed, retry, 'same'],
    ['failed + offline stays failed', failed, { type: 'offline' }, 'same'],
    ['failed + restart -> connecting 0', failed, restart, connecting0],
    ['failed + stop -> idle', failed, { type: 'stop' }, IDLE],
    ['connected + stop -> idle', connected, { type: 'stop' }, IDLE],
    ['idle + stop stays', IDLE, { type: 'stop' }, 'same'],
    ['connected + close -> closed', connected, { type: 'close' }, closed],
    ['closed + restart stays closed', closed, restart, 'same'],
    ['closed + open stays closed', closed, open, 'same'],
    ['closed + stop stays closed', closed, { type: 'stop' }, 'same'],
  ];
  it.each(table)('%s', (_name, from, event, expected) => {
    const next = reduce(from, event);
    if (expected === 'same') expect(next).toBe(from);
    else {
      expect(next).toEqual(expected);
      expect(next).not.toBe(from);
    }
  });

  it('numbers the next retry from the current attempt', () => {
    expect(nextAttempt(IDLE)).toBe(1);
    expect(nextAttempt(connected)).toBe(1);
    expect(nextAttempt(connecting2)).toBe(3);
    expect(nextAttempt(reconnecting2)).toBe(3);
  });
});
