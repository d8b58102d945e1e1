import { describe, expect, it } from 'vitest';
import { encodeKey, sendKey, sendScope } from '../src/idempotency';

describe('idempotency keys', () => {
  it('never joins two different part lists into one key', () => {
    const lists = [
      ['G:a', 'b'],
      ['G', 'a:b'],
      ['G', 'a', 'b'],
      ['1:G', 'a'],
      ['', '1:a'],
      ['1:', 'a'],
      [''],
      [],
      ['G:ab'],
    ];
    const keys = lists.map(encodeKey);
    expect(new Set(keys).size).toBe(lists.length);
  });

  it('scopes by user when the request names one, else by session, else not at all', () => {
    expect(sendScope({ userId: 'ann', sessionGuid: 's' })).toEqual(['user', 'ann']);
    expect(sendScope({ userId: undefined, sessionGuid: 's' })).toEqual(['session', 's']);
    expect(sendScope({ userId: '', sessionGuid: '' })).toBeUndefined();
    expect(sendScope({ userId: undefined, sessionGuid: undefined })).toBeUndefined();
  });

  it('gives a user and a session of the same name, and a hook publish, keys of their own', () => {
    const keys = [
      sendKey(['user', 'x'], 't', '1'),
      sendKey(['session', 'x'], 't', '1'),
      sendKey(['user', 'x'], 't', '1', 1),
      sendKey(['user', 'x'], 't', '1', 2),
      sendKey(['user', 'x'], 't', '11'),
    ];
    expect(new Set(keys).size).toBe(keys.length);
  });
});
