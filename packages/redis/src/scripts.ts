/**
 * The Lua scripts. Each topic's read and publish runs as one script so that the epoch check,
 * the range and the trim see one consistent stream, and a publish, its wake-up and its
 * idempotency record are one step.
 *
 * Keys per topic (hash-tagged on the topic, so they land in one slot should Redis be a cluster):
 * - `<prefix>{<topic>}:s`: the stream. Each entry has `p` (the id of the entry before it) and
 *   `d` (the JSON data). `p` makes gaps exact: a cursor is still in history when the first
 *   entry after it names it as its predecessor; anything else (trimmed, restored from an older
 *   snapshot, from the future) is a `reset`.
 * - `<prefix>{<topic>}:m`: a hash with `epoch`, `since` (only when the stream outlived the
 *   previous epoch: the newest stream id when this epoch was made; else the epoch starts at
 *   `0-0`) and, once published to, `pub`.
 * - `<prefix>{<topic>}:i:<key>`: an idempotency record, the message id that the first publish
 *   with that key got; written by the same script as the message, expires after its ttl.
 */
import { createHash } from 'node:crypto';

/** A script with its SHA1, so calls go by EVALSHA and fall back to EVAL after a Redis restart. */
export interface Script {
  readonly source: string;
  readonly sha: string;
  readonly keys: number;
}

function script(source: string, keys: number): Script {
  return { source, sha: createHash('sha1').update(source).digest('hex'), keys };
}

// Shared prelude: find or make the epoch. A topic nobody published to gets a meta key that
// expires (refreshed by each read), so polling made-up topic names cannot fill Redis.
// Leaves `ep` (the epoch) and `last` (the newest stream id, '0-0' when none).
const ENSURE_EPOCH = `
local newest = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
local last = '0-0'
if newest[1] then last = newest[1][1] end
local ep = redis.call('HGET', KEYS[2], 'epoch')
if not ep then
  ep = ARGV[1]
  redis.call('HSET', KEYS[2], 'epoch', ep)
  -- The stream outlived the meta key: what it holds is from the epoch before.
  if last ~= '0-0' then redis.call('HSET', KEYS[2], 'since', last) end
end
if redis.call('HEXISTS', KEYS[2], 'pub') == 0 then
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
end
`;

// Where a reset resumes when the client has seen up to 'from': just before the first entry
// after it (that entry's 'p': every entry from there on is kept), or the newest id when none
// follows.
const RESUME = `
local function resume(from)
  local after = redis.pcall('XRANGE', KEYS[1], '(' .. from, '+', 'COUNT', 1)
  if after.err or not after[1] then return last end
  local fields = after[1][2]
  for i = 1, #fields, 2 do
    if fields[i] == 'p' then return fields[i + 1] end
  end
  return last
end
`;

/**
 * KEYS: stream, meta. ARGV: fresh epoch, empty-topic ttl ms, cursor epoch ('' = handshake),
 * cursor stream id, limit. Returns {epoch, position, reset 0|1, entries (at most limit + 1)}.
 * The position is the newest id, or after a reset the one delivery resumes from, skipping
 * nothing still kept that the client cannot have seen: a cursor of another epoch (a Redis
 * restarted without persistence) resumes at the start of this epoch, a cursor of this epoch
 * (trimmed, restored from an older snapshot) right after itself; either way just before the
 * oldest entry kept from there.
 */
export const READ = script(
  `${ENSURE_EPOCH}${RESUME}
if ARGV[3] == '' then return {ep, last, 0, {}} end
if ARGV[3] ~= ep then
  return {ep, resume(redis.call('HGET', KEYS[2], 'since') or '0-0'), 1, {}}
end
local cursor = ARGV[4]
if cursor == last then return {ep, last, 0, {}} end
local entries = redis.pcall('XRANGE', KEYS[1], '(' .. cursor, '+', 'COUNT', tonumber(ARGV[5]) + 1)
if entries.err or not entries[1] then return {ep, last, 1, {}} end
local fields = entries[1][2]
local prev = nil
for i = 1, #fields, 2 do
  if fields[i] == 'p' then prev = fields[i + 1] end
end
if prev ~= cursor then return {ep, prev or last, 1, {}} end
return {ep, last, 0, entries}
`,
  2,
);

/**
 * KEYS: stream, meta. ARGV: fresh epoch, empty-topic ttl ms, limit.
 * Returns {epoch, newest id, entries newest first}.
 */
export const RECENT = script(
  `${ENSURE_EPOCH}
if tonumber(ARGV[3]) == 0 then return {ep, last, {}} end
return {ep, last, redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', tonumber(ARGV[3]))}
`,
  2,
);

// The publish itself, of one message or of a batch. KEYS[1] stream, KEYS[2] meta; ARGV: fresh
// epoch, max length (0 = none), max age ms (0 = none), wake-up channel, topic, idempotency ttl
// ms (PUBLISH_ONCE only), then the JSON data of each message from ARGV[7] on. Every message
// is appended with its predecessor's id; the trims and the one wake-up come after the last.
// Leaves `ep` and `ids`.
const APPEND = `
local ep = redis.call('HGET', KEYS[2], 'epoch')
local exists = redis.call('EXISTS', KEYS[1]) == 1
local prev = '0-0'
if exists then
  local newest = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
  if newest[1] then prev = newest[1][1] end
end
-- Published to before, yet no stream: the history was lost (evicted, deleted), so old
-- cursors must not continue into the new stream.
if ep and not exists and redis.call('HEXISTS', KEYS[2], 'pub') == 1 then ep = false end
if not ep then
  ep = ARGV[1]
  redis.call('HSET', KEYS[2], 'epoch', ep)
  redis.call('HDEL', KEYS[2], 'since')
  -- The stream outlived the meta key: what it holds is from the epoch before.
  if prev ~= '0-0' then redis.call('HSET', KEYS[2], 'since', prev) end
end
local ids = {}
for i = 7, #ARGV do
  prev = redis.call('XADD', KEYS[1], '*', 'p', prev, 'd', ARGV[i])
  ids[#ids + 1] = prev
end
local maxLen = tonumber(ARGV[2])
if maxLen > 0 then redis.call('XTRIM', KEYS[1], 'MAXLEN', '~', maxLen) end
local maxAge = tonumber(ARGV[3])
if maxAge > 0 then
  local ms = tonumber(string.match(prev, '^(%d+)'))
  redis.call('XTRIM', KEYS[1], 'MINID', '~', string.format('%.0f', ms - maxAge))
end
if not exists then
  redis.call('HSET', KEYS[2], 'pub', '1')
  redis.call('PERSIST', KEYS[2])
end
redis.call('PUBLISH', ARGV[4], ARGV[5])
`;

/**
 * KEYS: stream, meta. ARGV: fresh epoch, max length (0 = none), max age ms (0 = none), wake-up
 * channel, topic, '' (no idempotency), then the JSON data of one or more messages, in order.
 * Returns {epoch, the new id of each message}: a batch costs one call and one wake-up.
 */
export const PUBLISH = script(
  `${APPEND}
table.insert(ids, 1, ep)
return ids
`,
  2,
);

/**
 * {@link PUBLISH} of one message once per idempotency key: KEYS adds the record, ARGV[6] is its
 * ttl ms. The check, the publish and the record are one script, so neither a crash nor a
 * concurrent retry can come between them: there is no "pending" state to wait on or to outlive
 * a crash. Returns {epoch, new id}, or {'=', the recorded message id} when the key was
 * published before.
 */
export const PUBLISH_ONCE = script(
  `
local done = redis.call('GET', KEYS[3])
if done then return {'=', done} end
${APPEND}
redis.call('SET', KEYS[3], ep .. ':' .. ids[1], 'PX', ARGV[6])
return {ep, ids[1]}
`,
  3,
);

/** Every script, loaded on each connect. */
export const SCRIPTS: readonly Script[] = [READ, RECENT, PUBLISH, PUBLISH_ONCE];
