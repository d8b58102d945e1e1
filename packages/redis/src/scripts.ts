/**
 * The Lua scripts. Each topic's read and publish runs as one script so that the epoch check,
 * the range and the trim see one consistent stream, and a publish and its wake-up are one step.
 *
 * Keys per topic (hash-tagged on the topic, so both land in one slot should Redis be a cluster):
 * - `<prefix>{<topic>}:s`: the stream. Each entry has `p` (the id of the entry before it) and
 *   `d` (the JSON data). `p` makes gaps exact: a cursor is still in history when the first
 *   entry after it names it as its predecessor; anything else (trimmed, restored from an older
 *   snapshot, from the future) is a `reset`.
 * - `<prefix>{<topic>}:m`: a hash with `epoch` and, once published to, `pub`.
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
const ENSURE_EPOCH = `
local ep = redis.call('HGET', KEYS[2], 'epoch')
if not ep then
  ep = ARGV[1]
  redis.call('HSET', KEYS[2], 'epoch', ep)
end
if redis.call('HEXISTS', KEYS[2], 'pub') == 0 then
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
end
local newest = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
local last = '0-0'
if newest[1] then last = newest[1][1] end
`;

/**
 * KEYS: stream, meta. ARGV: fresh epoch, empty-topic ttl ms, cursor epoch ('' = handshake),
 * cursor stream id, limit. Returns {epoch, newest id, reset 0|1, entries (at most limit + 1)}.
 */
export const READ = script(
  `${ENSURE_EPOCH}
if ARGV[3] == '' then return {ep, last, 0, {}} end
if ARGV[3] ~= ep then return {ep, last, 1, {}} end
local cursor = ARGV[4]
if cursor == last then return {ep, last, 0, {}} end
local entries = redis.pcall('XRANGE', KEYS[1], '(' .. cursor, '+', 'COUNT', tonumber(ARGV[5]) + 1)
if entries.err or not entries[1] then return {ep, last, 1, {}} end
local fields = entries[1][2]
local prev = nil
for i = 1, #fields, 2 do
  if fields[i] == 'p' then prev = fields[i + 1] end
end
if prev ~= cursor then return {ep, last, 1, {}} end
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

/**
 * KEYS: stream, meta. ARGV: fresh epoch, JSON data, max length (0 = none), max age ms
 * (0 = none), wake-up channel, topic. Returns {epoch, new id}.
 */
export const PUBLISH = script(
  `
local ep = redis.call('HGET', KEYS[2], 'epoch')
local exists = redis.call('EXISTS', KEYS[1]) == 1
-- Published to before, yet no stream: the history was lost (evicted, deleted), so old
-- cursors must not continue into the new stream.
if ep and not exists and redis.call('HEXISTS', KEYS[2], 'pub') == 1 then ep = false end
if not ep then
  ep = ARGV[1]
  redis.call('HSET', KEYS[2], 'epoch', ep)
end
local prev = '0-0'
if exists then
  local newest = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
  if newest[1] then prev = newest[1][1] end
end
local id
local maxLen = tonumber(ARGV[3])
if maxLen > 0 then
  id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', maxLen, '*', 'p', prev, 'd', ARGV[2])
else
  id = redis.call('XADD', KEYS[1], '*', 'p', prev, 'd', ARGV[2])
end
local maxAge = tonumber(ARGV[4])
if maxAge > 0 then
  local ms = tonumber(string.match(id, '^(%d+)'))
  redis.call('XTRIM', KEYS[1], 'MINID', '~', string.format('%.0f', ms - maxAge))
end
if not exists then
  redis.call('HSET', KEYS[2], 'pub', '1')
  redis.call('PERSIST', KEYS[2])
end
redis.call('PUBLISH', ARGV[5], ARGV[6])
return {ep, id}
`,
  2,
);

/**
 * KEYS: idempotency key. ARGV: ttl ms. Values are 'p' (pending) or 'd' .. answer.
 * Returns {'new'}, {'pending'} or {'done', answer}.
 */
export const RESERVE = script(
  `
if redis.call('SET', KEYS[1], 'p', 'NX', 'PX', ARGV[1]) then return {'new'} end
local v = redis.call('GET', KEYS[1])
if v == 'p' then return {'pending'} end
return {'done', string.sub(v, 2)}
`,
  1,
);

/** KEYS: idempotency key. Deletes it only while pending, never someone's stored answer. */
export const RELEASE = script(
  `
if redis.call('GET', KEYS[1]) == 'p' then redis.call('DEL', KEYS[1]) end
return 0
`,
  1,
);
