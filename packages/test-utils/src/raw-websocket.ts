/**
 * A WebSocket client made of a raw TCP socket, for hostile-client tests: it writes masked frames
 * as fast as the socket takes them and may never read a byte of what the server answers (a `ws`
 * client always reads). The handshake and the client framing (RFC 6455 §5.2) are a few lines.
 */
import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';

/** One masked text frame from a client; `text` under 64 KiB. */
export function maskedTextFrame(text: string): Buffer {
  const payload = Buffer.from(text);
  const length = payload.length;
  if (length >= 65_536) throw new RangeError('maskedTextFrame: 64 KiB at most');
  const header =
    length < 126
      ? Buffer.from([0x81, 0x80 | length])
      : Buffer.from([0x81, 0xfe, length >> 8, length & 0xff]);
  const mask = randomBytes(4);
  const masked = Buffer.alloc(length);
  for (let index = 0; index < length; index += 1) {
    masked[index] = (payload[index] as number) ^ (mask[index % 4] as number);
  }
  return Buffer.concat([header, mask, masked]);
}

/** A raw socket upgraded (or being upgraded) to a WebSocket. */
export interface RawWebSocket {
  readonly socket: Socket;
  /** Resolves when the server closed or destroyed the connection. */
  readonly closed: Promise<void>;
}

/**
 * Opens `ws://host:port{path}` over a plain TCP socket and writes the upgrade. With
 * `read: false` (the default) it never reads what comes back, not even the handshake answer.
 */
export function openRawWebSocket(
  port: number,
  path: string,
  { read = false, host = '127.0.0.1' }: { read?: boolean; host?: string } = {},
): Promise<RawWebSocket> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, host, () => {
      socket.off('error', reject);
      socket.on('error', () => {});
      socket.write(
        `GET ${path} HTTP/1.1\r\nHost: ${host}:${port}\r\nUpgrade: websocket\r\n` +
          `Connection: Upgrade\r\nSec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\n` +
          'Sec-WebSocket-Version: 13\r\n\r\n',
      );
      if (!read) socket.pause();
      const closed = new Promise<void>((done) => socket.once('close', () => done()));
      resolve({ socket, closed });
    });
    socket.once('error', reject);
  });
}

/**
 * Writes `frame` `count` times in chunks, waiting for the socket to take each; stops early
 * (resolving how many were written) when the socket closes or stops taking data for
 * `stallMs` (the server stopped reading it).
 */
export async function floodFrames(
  raw: RawWebSocket,
  frame: Buffer,
  count: number,
  stallMs = 3000,
): Promise<number> {
  const per = Math.max(1, Math.min(count, Math.floor(65_536 / frame.length)));
  const chunk = Buffer.concat(Array.from({ length: per }, () => frame));
  const { socket } = raw;
  let sent = 0;
  while (sent < count) {
    if (socket.destroyed || socket.writableEnded) return sent;
    const room = socket.write(chunk);
    sent += per;
    if (room) continue;
    const drained = await new Promise<boolean>((resolve) => {
      const done = (value: boolean) => {
        socket.off('drain', onDrain);
        socket.off('close', onClose);
        clearTimeout(timer);
        resolve(value);
      };
      const onDrain = () => done(true);
      const onClose = () => done(false);
      const timer = setTimeout(() => done(false), stallMs);
      socket.on('drain', onDrain);
      socket.on('close', onClose);
    });
    if (!drained) return sent;
  }
  return sent;
}
