import { describe, expect, it } from 'vitest';
import { isProtocolError } from '../src/errors';
import { parseErrorBody, parseJson, parsePollAnswer, parseRetryAfter } from '../src/parse';

describe('parsePollAnswer', () => {
  it('reads a full v1 answer with topics as Map keys', () => {
    const answer = parsePollAnswer({
      messages: [{ topic: 'constructor', id: '1', data: { a: 1 } }],
      cursors: { constructor: '1', toString: '7' },
      reconnect: true,
      resets: ['toString'],
      errors: { secret: { code: 'forbidden', message: 'no' } },
    });
    if (isProtocolError(answer)) throw answer;
    expect(answer.messages).toEqual([{ topic: 'constructor', id: '1', data: { a: 1 } }]);
    expect(answer.cursors.get('toString')).toBe('7');
    expect(answer.resets).toEqual(['toString']);
    expect(answer.errors.get('secret')).toEqual({ code: 'forbidden', message: 'no' });
  });

  it('reads the legacy one-message shape without id', () => {
    const answer = parsePollAnswer({ topic: 'chat', data: 'hi' });
    if (isProtocolError(answer)) throw answer;
    expect(answer.messages).toEqual([{ topic: 'chat', id: undefined, data: 'hi' }]);
  });

  it('reads the legacy reconnect answer and an empty object as empty answers', () => {
    expect(parsePollAnswer({ reconnect: true })).toMatchObject({ messages: [], resets: [] });
    expect(parsePollAnswer({})).toMatchObject({ messages: [], resets: [] });
  });

  it('reads the announced timings and ignores unusable ones', () => {
    const answer = parsePollAnswer({ timings: { heartbeat: 40_000, idleTimeout: 'soon' } });
    if (isProtocolError(answer)) throw answer;
    expect(answer.timings).toEqual({ heartbeat: 40_000 });
    const none = parsePollAnswer({ timings: { heartbeat: -1 } });
    if (isProtocolError(none)) throw none;
    expect(none.timings).toEqual({});
  });

  it.each([
    ['null', null],
    ['an array', []],
    ['a string', 'hello'],
    ['a number', 42],
    ['messages not an array', { messages: {} }],
    ['a message without id', { messages: [{ topic: 'a', data: 1 }] }],
    ['a message without data', { messages: [{ topic: 'a', id: '1' }] }],
    ['a cursor that is not a string', { cursors: { a: 1 } }],
    ['cursors not an object', { cursors: [] }],
    ['resets of numbers', { resets: [1] }],
    ['a legacy topic that is not a string', { topic: 3, data: 1 }],
  ])('rejects %s as a protocol error', (_name, body) => {
    expect(isProtocolError(parsePollAnswer(body))).toBe(true);
  });
});

describe('parseJson and parseErrorBody', () => {
  it('answers undefined for text that is not JSON', () => {
    expect(parseJson('<html>')).toBeUndefined();
    expect(parseJson('{"a":1}')).toEqual({ a: 1 });
  });

  it('reads the error body and ignores other shapes', () => {
    expect(parseErrorBody({ error: { code: 'bad_request', message: 'bad' } })).toEqual({
      code: 'bad_request',
      message: 'bad',
    });
    expect(parseErrorBody({ error: 'x' })).toBeUndefined();
    expect(parseErrorBody(undefined)).toBeUndefined();
  });
});

describe('parseRetryAfter', () => {
  const now = Date.UTC(2025, 0, 1, 12, 0, 0);
  it('reads delta seconds', () => {
    expect(parseRetryAfter('7', now)).toBe(7000);
  });
  it('reads an HTTP date', () => {
    expect(parseRetryAfter('Wed, 01 Jan 2025 12:00:30 GMT', now)).toBe(30_000);
  });
  it('never answers a negative delay for a date in the past', () => {
    expect(parseRetryAfter('Wed, 01 Jan 2025 11:00:00 GMT', now)).toBe(0);
  });
  it('ignores absent and unreadable values', () => {
    expect(parseRetryAfter(null, now)).toBeUndefined();
    expect(parseRetryAfter('soon', now)).toBeUndefined();
  });
});
