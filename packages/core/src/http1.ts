/**
 * Reading one HTTP/1.1 response from a connection's bytes, for the Node entry point's posts
 * (`node-http.ts`). Only what a client that POSTs JSON needs, and every input bounded: a status
 * line and headers (at most {@link MAX_HEAD_BYTES}, interim 1xx responses skipped), then a body
 * by `content-length`, by `transfer-encoding: chunked` (trailers read and dropped) or until the
 * connection closes, at most {@link MAX_BODY_BYTES}. Pure: fed bytes, it answers; no I/O.
 */

/** The most bytes a response's status line and headers may take (Node's default is 16 KiB). */
export const MAX_HEAD_BYTES = 64 * 1024;

/** The most bytes of body one answer may carry (a server's answers are ~1 MiB at most). */
export const MAX_BODY_BYTES = 64 * 1024 * 1024;

/** A response read whole. */
export interface Http1Response {
  status: number;
  /** The body, decoded as UTF-8. */
  text: string;
  /** The `Retry-After` header (the one header the client reads), undefined when none. */
  retryAfter: string | undefined;
  /** False when the connection cannot carry another request (closed, HTTP/1.0, or unread bytes). */
  reusable: boolean;
}

const CRLF = Buffer.from('\r\n');
const EMPTY = Buffer.alloc(0);
/** The four header names the reader acts on, as servers usually spell them, in lower case. */
const KNOWN_NAMES = new Map(
  ['content-length', 'transfer-encoding', 'connection', 'retry-after'].flatMap((name) => [
    [name, name],
    [name.replace(/(^|-)[a-z]/g, (c) => c.toUpperCase()), name],
  ]),
);

/**
 * The status of a `HTTP/1.0` or `HTTP/1.1` status line (`HTTP/1.1 200 OK`), or undefined. By
 * character codes: the reader's work runs cold, where a regular expression costs microseconds.
 */
function statusOf(text: string): number | undefined {
  if (!text.startsWith('HTTP/1.')) return undefined;
  const minor = text.charCodeAt(7);
  if ((minor !== 0x30 && minor !== 0x31) || text.charCodeAt(8) !== 0x20) return undefined;
  let code = 0;
  for (let index = 9; index < 12; index += 1) {
    const digit = text.charCodeAt(index) - 0x30;
    if (!(digit >= 0 && digit <= 9)) return undefined;
    code = code * 10 + digit;
  }
  const after = text.charCodeAt(12);
  return Number.isNaN(after) || after === 0x20 || after === 0x0d ? code : undefined;
}

/** `text` from `from` to `to` without the spaces and tabs around it (as `trim` would, for OWS). */
function trimmed(text: string, from: number, to: number): string {
  let start = from;
  let end = to;
  while (start < end && isSpace(text.charCodeAt(start))) start += 1;
  while (end > start && isSpace(text.charCodeAt(end - 1))) end -= 1;
  return text.slice(start, end);
}

const isSpace = (code: number) => code === 0x20 || code === 0x09;

/** 1 to 15 decimal digits. */
function isLength(text: string): boolean {
  if (text.length === 0 || text.length > 15) return false;
  for (let index = 0; index < text.length; index += 1) {
    const code = text.charCodeAt(index);
    if (code < 0x30 || code > 0x39) return false;
  }
  return true;
}
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const CHUNK_SIZE = /^([0-9A-Fa-f]{1,15})[ \t]*(?:;.*)?$/;

/**
 * A copy of `bytes` the reader can keep: what {@link Http1ResponseReader.push} is given may be a
 * view of a buffer that the next read of the connection fills again (the Node entry reads
 * plain-TCP answers into one shared buffer). An answer read whole in one push is decoded from it
 * at once and never copied.
 */
const kept = (bytes: Buffer): Buffer => Buffer.from(bytes);

/** Why a response could not be read (the connection is then closed). */
export class Http1Error extends Error {
  override name = 'Http1Error';
}

type Body =
  | { kind: 'length'; left: number }
  | { kind: 'chunked'; left: number; step: 'size' | 'data' | 'data-end' | 'trailers' }
  | { kind: 'close' };

/**
 * Reads one response, fed with the connection's bytes as they come ({@link push}) and told when
 * the connection ended ({@link end}). Each returns the response once it is whole, an
 * `Http1Error` when the bytes are not one, or undefined while more are needed.
 */
export class Http1ResponseReader {
  #pending: Buffer | undefined;
  #status = 0;
  #http10 = false;
  #connection = '';
  #retryAfter: string | undefined;
  #body: Body | undefined;
  #chunks: Buffer[] = [];
  #bytes = 0;

  push(chunk: Buffer): Http1Response | Http1Error | undefined {
    let data = this.#pending ? Buffer.concat([this.#pending, chunk]) : chunk;
    this.#pending = undefined;
    while (data.length > 0) {
      if (this.#body === undefined) {
        // The head is found in a latin1 view of the bytes (one conversion, then string search:
        // cheaper when cold than a Buffer search and a second conversion).
        const view = data.toString('latin1', 0, Math.min(data.length, MAX_HEAD_BYTES + 4));
        const end = view.indexOf('\r\n\r\n');
        if (end === -1) {
          if (data.length > MAX_HEAD_BYTES) return this.#fail('response headers too large');
          this.#pending = kept(data);
          return undefined;
        }
        if (end > MAX_HEAD_BYTES) return this.#fail('response headers too large');
        const problem = this.#head(view, end);
        if (problem) return this.#fail(problem);
        // `#head` set the framing (TypeScript still sees the `undefined` checked above).
        const framed = this.#body as Body | undefined;
        const start = end + 4;
        // The common answer: its whole body in this chunk, decoded straight from it.
        if (framed?.kind === 'length' && this.#bytes === 0 && data.length - start === framed.left) {
          return this.#done(EMPTY, true, data.toString('utf8', start));
        }
        data = data.subarray(start);
        if (framed === undefined) continue; // an interim 1xx response: the real one follows
        if (framed.kind === 'length' && framed.left === 0) return this.#done(data);
        continue;
      }
      const body = this.#body;
      if (body.kind === 'close') {
        const problem = this.#take(data);
        return problem ? this.#fail(problem) : undefined;
      }
      if (body.kind === 'length') {
        const rest = this.#part(body, data);
        if (rest instanceof Http1Error) return rest;
        return body.left === 0 ? this.#done(rest) : undefined;
      }
      // Chunked.
      if (body.step === 'data') {
        const rest = this.#part(body, data);
        if (rest instanceof Http1Error) return rest;
        data = rest;
        if (body.left === 0) body.step = 'data-end';
        continue;
      }
      const eol = data.indexOf(CRLF);
      if (eol === -1) {
        if (data.length > 4096) return this.#fail('a chunk line is too long');
        this.#pending = kept(data);
        return undefined;
      }
      const line = data.toString('latin1', 0, eol);
      data = data.subarray(eol + 2);
      if (body.step === 'data-end') {
        if (line !== '') return this.#fail('a chunk does not end with CRLF');
        body.step = 'size';
      } else if (body.step === 'size') {
        const size = CHUNK_SIZE.exec(line);
        if (!size) return this.#fail('a bad chunk size');
        body.left = Number.parseInt(size[1] as string, 16);
        if (this.#bytes + body.left > MAX_BODY_BYTES) return this.#fail(tooLarge());
        body.step = body.left === 0 ? 'trailers' : 'data';
      } else if (line === '') {
        return this.#done(data); // the empty line after the trailers
      }
    }
    return undefined;
  }

  /** The connection ended (the server closed it): a body read until the close is whole now. */
  end(): Http1Response | Http1Error {
    if (this.#body?.kind === 'close') return this.#done(Buffer.alloc(0), false);
    return new Http1Error('the connection closed before the whole answer');
  }

  /**
   * Reads a status line and headers; sets the body's framing, or none for an interim 1xx. Only
   * the four headers the client acts on are looked at (found by their length first): a poll's
   * answer is read after 20 ms or 20 s of idling, when every instruction costs many times its
   * warm price, so the reader does as little as it can.
   */
  #head(text: string, end: number): string | undefined {
    const code = statusOf(text);
    if (code === undefined) return 'not an HTTP/1.x response';
    let length: string | undefined;
    let coding: string | undefined;
    let connection = '';
    let retryAfter: string | undefined;
    let at = text.indexOf('\r\n');
    while (at !== -1 && at < end) {
      const from = at + 2;
      at = text.indexOf('\r\n', from);
      const to = at === -1 || at > end ? end : at;
      const colon = text.indexOf(':', from);
      if (colon <= from || colon > to) return 'a malformed response header';
      const size = colon - from;
      if (size !== 14 && size !== 17 && size !== 10 && size !== 11) continue;
      // c(ontent-length, onnection), t(ransfer-encoding), r(etry-after): skips Keep-Alive.
      const first = text.charCodeAt(from) | 0x20;
      if (first !== 0x63 && first !== 0x74 && first !== 0x72) continue;
      const spelled = text.slice(from, colon);
      const name = KNOWN_NAMES.get(spelled) ?? spelled.toLowerCase();
      const value = trimmed(text, colon + 1, to);
      // A repeated header's values joined with `, `, as one header would carry them.
      const join = (before: string | undefined) =>
        before === undefined ? value : `${before}, ${value}`;
      if (name === 'content-length') length = join(length);
      else if (name === 'transfer-encoding') coding = join(coding);
      else if (name === 'connection') connection = join(connection || undefined);
      else if (name === 'retry-after') retryAfter = join(retryAfter);
    }
    if (code < 200 && code !== 101) return undefined; // 100 Continue, 103 Early Hints
    if (code === 101) return 'the server switched protocols';
    this.#status = code;
    this.#http10 = text.charCodeAt(7) === 0x30;
    this.#connection = connection.toLowerCase();
    this.#retryAfter = retryAfter;
    if (code === 204 || code === 304) this.#body = { kind: 'length', left: 0 };
    else if (coding !== undefined) {
      this.#body = /(?:^|,)\s*chunked\s*$/i.test(coding)
        ? { kind: 'chunked', left: 0, step: 'size' }
        : { kind: 'close' };
    } else if (length !== undefined) {
      // Repeated equal values (`5, 5`) are one length; anything else is not a length.
      let only: string | undefined = length;
      if (length.includes(',')) {
        const values = new Set(length.split(',').map((value) => value.trim()));
        only = values.size === 1 ? [...values][0] : undefined;
      }
      if (only === undefined || !isLength(only)) return 'a bad content-length';
      const left = Number(only);
      if (left > MAX_BODY_BYTES) return tooLarge();
      this.#body = { kind: 'length', left };
    } else this.#body = { kind: 'close' };
    return undefined;
  }

  /** Takes up to `body.left` bytes of `data` into the body; returns the bytes after them. */
  #part(body: { left: number }, data: Buffer): Buffer | Http1Error {
    const part = data.subarray(0, body.left);
    const problem = this.#take(part);
    if (problem) return this.#fail(problem);
    body.left -= part.length;
    return data.subarray(part.length);
  }

  #take(part: Buffer): string | undefined {
    this.#bytes += part.length;
    if (this.#bytes > MAX_BODY_BYTES) return tooLarge();
    if (part.length > 0) this.#chunks.push(kept(part));
    return undefined;
  }

  #done(rest: Buffer, open = true, text?: string): Http1Response {
    const chunks = this.#chunks;
    return {
      status: this.#status,
      text:
        text ??
        (chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks)).toString('utf8'),
      retryAfter: this.#retryAfter,
      // Bytes after the answer were never asked for: the connection is not trusted again.
      reusable:
        open &&
        rest.length === 0 &&
        this.#body?.kind !== 'close' &&
        !this.#http10 &&
        (this.#connection === 'keep-alive' ||
          this.#connection === '' ||
          !/(?:^|,)\s*close\s*(?:,|$)/.test(this.#connection)),
    };
  }

  #fail(message: string): Http1Error {
    return new Http1Error(message);
  }
}

const tooLarge = () => `the answer is larger than ${MAX_BODY_BYTES} bytes`;

/**
 * The request head of a JSON POST, or an error when a header would break the request (a name
 * that is not a token, a value with a control character: a header injection).
 */
export function requestHead(
  path: string,
  host: string,
  headers: Readonly<Record<string, string>>,
  length: number,
): string | Http1Error {
  let head = `POST ${path} HTTP/1.1\r\nhost: ${host}\r\ncontent-type: application/json\r\n`;
  for (const name in headers) {
    const value = String(headers[name]);
    if (!TOKEN.test(name)) return new Http1Error(`invalid header name ${JSON.stringify(name)}`);
    // biome-ignore lint/suspicious/noControlCharactersInRegex: the characters refused.
    if (/[\0-\x08\x0a-\x1f\x7f]/.test(value)) {
      return new Http1Error(`invalid character in the value of header ${name}`);
    }
    const lower = name.toLowerCase();
    if (lower === 'host' || lower === 'content-length' || lower === 'content-type') continue;
    head += `${name}: ${value}\r\n`;
  }
  return `${head}content-length: ${length}\r\n\r\n`;
}
