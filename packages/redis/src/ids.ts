/**
 * Message ids and positions are `<epoch>:<stream id>`, e.g. `k3v9x0qa:1712345678901-0`.
 *
 * The stream id alone is not enough: after a Redis restart without persistence a topic's
 * stream starts again with new time-based ids that are greater than every old cursor, so a
 * client would silently skip what was lost. The epoch is a random word stored next to the
 * stream and made again whenever the stream's history is lost, so an old cursor no longer
 * matches and the client gets a `reset`.
 */

/** The position of a topic that has no message yet. */
export const EMPTY_STREAM_ID = '0-0';

const CURSOR = /^([0-9a-z]{1,32}):(\d{1,20}-\d{1,20})$/;

/** Joins an epoch and a stream id into a message id or position. */
export function formatId(epoch: string, streamId: string): string {
  return `${epoch}:${streamId}`;
}

/** Splits a cursor, or answers undefined for anything this broker did not make. */
export function parseCursor(cursor: string): { epoch: string; streamId: string } | undefined {
  const match = CURSOR.exec(cursor);
  if (!match?.[1] || !match[2]) return undefined;
  return { epoch: match[1], streamId: match[2] };
}

/** A fresh epoch: 8 base-36 characters from a CSPRNG (about 41 bits). */
export function newEpoch(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(8));
  let out = '';
  for (const byte of bytes) out += (byte % 36).toString(36);
  return out;
}
