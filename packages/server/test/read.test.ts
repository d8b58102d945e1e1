/**
 * The woken one-topic answer is written out part by part with its byte length counted from the
 * parts: the `content-length` must be the body's UTF-8 bytes for any id, position and data.
 */
import { describe, expect, it } from 'vitest';
import type { BrokerMessage, BrokerReadResult } from '../src/broker';
import type { EngineContext } from '../src/engine/context';
import { asciiJson, encodeWoken } from '../src/engine/read';

const context = {
  options: { maxAnswerBytes: 1 << 20, log: () => {} },
} as unknown as EngineContext;

const message = (id: string, data: unknown, withJson: boolean): BrokerMessage => {
  const json = JSON.stringify(data);
  return withJson
    ? { topic: 'chat', id, data, json, bytes: Buffer.byteLength(json) }
    : { topic: 'chat', id, data };
};

describe('encodeWoken', () => {
  it('counts the bytes of ids, positions and data that are not plain ASCII', () => {
    const cases: [string, unknown][] = [
      ['e-1', 'plain'],
      ['é-2', 'é€😀'.repeat(50)],
      ['q"\\-3', { quote: '"', backslash: '\\', nl: '\n', tab: '\t' }],
      ['\u2028-4', ['\u0000', '\u007f', '\u2029']],
    ];
    for (const withJson of [true, false]) {
      const messages = cases.map(([id, data]) => message(id, data, withJson));
      const last = cases[cases.length - 1]?.[0] as string;
      const result: BrokerReadResult = { messages, position: last, reset: false, more: false };
      const body = encodeWoken(context, 'chat', 'e-0', result);
      const text = String(body.body);
      expect(Number(body.length)).toBe(Buffer.byteLength(text));
      // Written as latin1 only when that is its UTF-8 too.
      expect(body.ascii).toBe(false);
      expect(JSON.parse(text)).toEqual({
        messages: cases.map(([id, data]) => ({ topic: 'chat', id, data })),
        cursors: { chat: last },
      });
    }
  });

  it('answers a reset with its position and the resets', () => {
    const result: BrokerReadResult = { messages: [], position: 'e-9', reset: true, more: false };
    const body = encodeWoken(context, 'chat', 'e-0', result);
    expect(Number(body.length)).toBe(Buffer.byteLength(String(body.body)));
    expect(JSON.parse(String(body.body))).toEqual({ cursors: { chat: 'e-9' }, resets: ['chat'] });
  });
});

describe('encodeWoken, ASCII', () => {
  it('marks an answer of ASCII only, which is written as latin1', () => {
    const messages = [message('e-1', { text: 'plain' }, true), message('e-2', [1, 2], false)];
    const result: BrokerReadResult = { messages, position: 'e-2', reset: false, more: false };
    const body = encodeWoken(context, 'chat', 'e-0', result);
    expect(body.ascii).toBe(true);
    expect(Number(body.length)).toBe(String(body.body).length);
  });
});

describe('encodeWoken, large', () => {
  it('keeps a large shared answer as bytes, ASCII or not, that decode to the text', () => {
    for (const data of ['x'.repeat(40_000), 'é€😀'.repeat(10_000)]) {
      const messages = [message('e-1', data, true)];
      const result: BrokerReadResult = { messages, position: 'e-1', reset: false, more: false };
      const body = encodeWoken(context, 'chat', 'e-0', result);
      expect(Buffer.isBuffer(body.body)).toBe(true);
      expect(Number(body.length)).toBe((body.body as Buffer).length);
      expect(JSON.parse((body.body as Buffer).toString('utf8')).messages[0].data).toBe(data);
    }
  });
});

describe('asciiJson', () => {
  it('quotes printable ASCII as is and leaves anything to escape to JSON.stringify', () => {
    expect(asciiJson('a-1:/@._~ ')).toBe(JSON.stringify('a-1:/@._~ '));
    for (const text of ['"', '\\', '\n', '\u001f', '\u007f', 'é', '😀']) {
      expect(asciiJson(text)).toBeUndefined();
    }
  });
});
