import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  Http1Error,
  type Http1Response,
  Http1ResponseReader,
  MAX_BODY_BYTES,
  MAX_HEAD_BYTES,
  requestHead,
} from '../src/http1';

/** Feeds `text` (latin1 bytes, or a Buffer) in pieces of `size` bytes, then `end` when asked. */
function read(input: string | Buffer, size = Infinity, end = false) {
  const bytes = typeof input === 'string' ? Buffer.from(input, 'latin1') : input;
  const reader = new Http1ResponseReader();
  for (let at = 0; at < bytes.length; at += size) {
    const result = reader.push(bytes.subarray(at, Math.min(bytes.length, at + size)));
    if (result !== undefined) return result;
  }
  return end ? reader.end() : undefined;
}

const ok = (result: Http1Response | Http1Error | undefined) => {
  if (!result || result instanceof Error) throw new Error(`no response: ${String(result)}`);
  return result;
};

const json = '{"messages":[{"topic":"t","id":"1","data":"é€"}]}';
const plain = `HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(json)}\r\n\r\n`;
const whole = Buffer.concat([Buffer.from(plain, 'latin1'), Buffer.from(json)]);
const chunked = Buffer.concat([
  Buffer.from('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nRetry-After: 3\r\n\r\n'),
  Buffer.from('5;name=value\r\n{"mes\r\n'),
  Buffer.from(`${(Buffer.byteLength(json) - 5).toString(16)}\r\n`),
  Buffer.from(`${json.slice(5)}\r\n`),
  Buffer.from('0\r\nx-trailer: 1\r\n\r\n'),
]);

describe('Http1ResponseReader', () => {
  it('reads a response framed by content-length, however its bytes are cut', () => {
    for (const size of [1, 2, 7, 64, Infinity]) {
      const response = ok(read(whole, size));
      expect(response).toMatchObject({ status: 200, text: json, reusable: true });
    }
  });

  it('reads a chunked response with extensions and trailers, however its bytes are cut', () => {
    for (const size of [1, 3, 16, Infinity]) {
      const response = ok(read(chunked, size));
      expect(response).toMatchObject({ status: 200, text: json, reusable: true });
      expect(response.retryAfter).toBe('3');
    }
  });

  it('reads a status line without a reason phrase, and headers in any case', () => {
    const response = ok(read('HTTP/1.1 503\r\nRETRY-AFTER: 7\r\nContent-Length: 0\r\n\r\n'));
    expect(response).toMatchObject({ status: 503, text: '', retryAfter: '7', reusable: true });
  });

  it('skips interim 1xx responses', () => {
    const response = ok(read(Buffer.concat([Buffer.from('HTTP/1.1 100 Continue\r\n\r\n'), whole])));
    expect(response).toMatchObject({ status: 200, text: json });
  });

  it('reads 204 without a body and an error status with its body', () => {
    expect(ok(read('HTTP/1.1 204 No Content\r\n\r\n'))).toMatchObject({ status: 204, text: '' });
    const body = '{"error":{"code":"rate_limited"}}';
    expect(
      ok(read(`HTTP/1.1 429 Too Many\r\ncontent-length: ${body.length}\r\n\r\n${body}`)),
    ).toMatchObject({ status: 429, text: body, reusable: true });
  });

  it('reads a body without length until the connection ends, and does not reuse it', () => {
    const reader = new Http1ResponseReader();
    expect(reader.push(Buffer.from('HTTP/1.1 200 OK\r\n\r\n{"a":'))).toBeUndefined();
    expect(reader.push(Buffer.from('1}'))).toBeUndefined();
    expect(ok(reader.end())).toMatchObject({ text: '{"a":1}', reusable: false });
  });

  it('does not reuse a connection the server closes, an HTTP/1.0 one, or one with bytes after the answer', () => {
    const closing =
      'HTTP/1.1 200 OK\r\nConnection: keep-alive, Close\r\ncontent-length: 2\r\n\r\n{}';
    expect(ok(read(closing)).reusable).toBe(false);
    expect(ok(read('HTTP/1.0 200 OK\r\ncontent-length: 2\r\n\r\n{}')).reusable).toBe(false);
    expect(ok(read('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}HTTP/1.1')).reusable).toBe(false);
    expect(ok(read('HTTP/1.1 200 OK\r\ncontent-length: 2, 2\r\n\r\n{}')).reusable).toBe(true);
  });

  it.each([
    ['not HTTP', 'SSH-2.0-OpenSSH\r\n\r\n', 'not an HTTP/1.x response'],
    ['a header line without a colon', 'HTTP/1.1 200 OK\r\nbroken\r\n\r\n', 'malformed'],
    ['two lengths', 'HTTP/1.1 200 OK\r\ncontent-length: 2, 3\r\n\r\n{}', 'content-length'],
    [
      'a length that is not a number',
      'HTTP/1.1 200 OK\r\ncontent-length: -1\r\n\r\n',
      'content-length',
    ],
    [
      'a bad chunk size',
      'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n',
      'chunk size',
    ],
    [
      'a chunk without its CRLF',
      'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\n{}xx\r\n',
      'CRLF',
    ],
    ['a protocol switch', 'HTTP/1.1 101 Switching Protocols\r\n\r\n', 'switched'],
  ])('refuses %s', (_name, text, message) => {
    const result = read(text);
    expect(result).toBeInstanceOf(Http1Error);
    expect((result as Error).message).toContain(message);
  });

  it('refuses headers over MAX_HEAD_BYTES, with or without their end', () => {
    const big = `HTTP/1.1 200 OK\r\nx: ${'a'.repeat(MAX_HEAD_BYTES)}`;
    expect(read(big, 4096)).toBeInstanceOf(Http1Error);
    expect(read(`${big}\r\n\r\n`)).toBeInstanceOf(Http1Error);
  });

  it('refuses a body over MAX_BODY_BYTES, announced or streamed', () => {
    const announced = read(`HTTP/1.1 200 OK\r\ncontent-length: ${MAX_BODY_BYTES + 1}\r\n\r\n`);
    expect((announced as Error).message).toContain('larger than');
    const chunk = `HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n${(MAX_BODY_BYTES + 1).toString(16)}\r\n`;
    expect((read(chunk) as Error).message).toContain('larger than');
    const reader = new Http1ResponseReader();
    reader.push(Buffer.from('HTTP/1.1 200 OK\r\n\r\n'));
    const block = Buffer.alloc(1024 * 1024, 0x20);
    let result: unknown;
    for (let index = 0; index <= 64 && result === undefined; index += 1)
      result = reader.push(block);
    expect((result as Error).message).toContain('larger than');
  });

  it('says when the connection ends before the whole answer', () => {
    const reader = new Http1ResponseReader();
    reader.push(Buffer.from('HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n{}'));
    expect(reader.end()).toBeInstanceOf(Http1Error);
    expect(new Http1ResponseReader().end()).toBeInstanceOf(Http1Error);
  });

  it('never throws on arbitrary bytes (fuzz)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.oneof(fc.uint8Array({ maxLength: 64 }), fc.constantFrom(whole, chunked)), {
          maxLength: 8,
        }),
        (pieces) => {
          const reader = new Http1ResponseReader();
          for (const piece of pieces) {
            const result = reader.push(Buffer.from(piece));
            if (result !== undefined) return;
          }
          reader.end();
        },
      ),
      { seed: 17, numRuns: 500 },
    );
  });
});

describe('requestHead', () => {
  it('writes a JSON POST with the headers given, never their own framing headers', () => {
    const head = requestHead(
      '/api/comet?x=1',
      'example.com:8080',
      { authorization: 'Bearer t', 'Content-Length': '9' },
      12,
    );
    expect(head).toBe(
      'POST /api/comet?x=1 HTTP/1.1\r\nhost: example.com:8080\r\ncontent-type: application/json\r\nauthorization: Bearer t\r\ncontent-length: 12\r\n\r\n',
    );
  });

  it('refuses a header that would inject another (CR, LF) or a name that is not a token', () => {
    expect(requestHead('/', 'h', { authorization: 'a\r\nx-admin: 1' }, 0)).toBeInstanceOf(
      Http1Error,
    );
    expect(requestHead('/', 'h', { 'bad name': 'a' }, 0)).toBeInstanceOf(Http1Error);
    expect(requestHead('/', 'h', { ok: 'tab\tis fine' }, 0)).not.toBeInstanceOf(Error);
  });
});
