/**
 * The Lua scripts. Each topic's read and publish runs as one script so that the epoch check,
 * the range and the trim see one consistent stream, and a publish, its wake-up and its
 * idempotency record are one step.
 *
 * Keys per topic (hash-tagged on the topic, so they land in one slot should Redis be a cluster),
 * made by the first publish and never by a read:
 * - `<prefix>{<topic>}:s`: the stream. Each entry has `p` (the id of the entry before it) and
 *   `d` (the JSON data). `p` makes gaps exact: a cursor is still in history when the first
 *   entry after it names it as its predecessor; anything else (trimmed, restored from an older
 *   snapshot, from the future) is a `reset`. Expires `maxAgeMs` + a minute after the last
 *   publish.
 * - `<prefix>{<topic>}:m`: a hash with `epoch`, `since` (only when the stream outlived the
 *   previous epoch: the newest stream id when this epoch was made; else the epoch starts at
 *   `0-0`), `pub`, `last` (the newest id ever published) and `avg` (the running mean size of a
 *   message, for the byte bound). Expires a day after the stream: while it lives, a stream that
 *   expired or was evicted goes on from `last`, so a client that had read everything continues
 *   without a reset.
 * - `<prefix>{<topic>}:i:<key>`: an idempotency record, the message id that the first publish
 *   with that key got; written by the same script as the message, expires after its ttl.
 *
 * A topic without a meta key is at the position `<global epoch>:0-<ms>` ("nothing here at
 * <ms>"): the global epoch (one key, `<prefix>epoch`, read by the broker at each connection)
 * changes when Redis loses everything, and the time rules out a whole lineage of the topic
 * having come and gone since (see READ).
 *
 * Presence topics (`<topic>@presence`) also have `<prefix>{<topic>}:pz`, a sorted set of member
 * ids scored by the Redis time (ms) their TTL ends, and `<prefix>{<topic>}:pd`, a hash of each
 * member's JSON; both expire two TTLs after the last join. Joins and leaves are appended to the
 * topic's stream by the same script that changes them: each is published exactly once.
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

// Shared prelude, which writes nothing. Leaves `ep` (the epoch, false without a meta key),
// `last` (the newest id: of the stream, else the meta's `last`, else '0-0') and `nowMs`.
const LOOK = `
local ep = redis.call('HGET', KEYS[2], 'epoch')
local newest = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
local last = '0-0'
if newest[1] then
  last = newest[1][1]
elseif ep then
  last = redis.call('HGET', KEYS[2], 'last') or '0-0'
end
local t = redis.call('TIME')
local nowMs = string.format('%.0f', tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))
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
 * KEYS: stream, meta. ARGV: global epoch, cursor epoch ('' = handshake), cursor stream id,
 * limit, lineage ms (the shortest time a meta key outlives its last publish). Returns {epoch,
 * position, reset 0|1, entries (at most limit + 1)}. The position is the newest id, or after a
 * reset the one delivery resumes from, skipping nothing still kept that the client cannot have
 * seen: a cursor of another epoch (a Redis restarted without persistence) resumes at the start
 * of this epoch, a cursor of this epoch (trimmed, restored from an older snapshot) right after
 * itself; either way just before the oldest entry kept from there.
 *
 * A cursor `<global epoch>:0-<ms>` ("nothing here at <ms>") reads the stream from its first
 * entry when that is the first of the topic's lineage (its predecessor `0-0`) and was written
 * less than a lineage's life after <ms>: else another lineage may have come and gone between.
 */
export const READ = script(
  `${LOOK}${RESUME}
local empty = ARGV[2] == ARGV[1] and string.sub(ARGV[3], 1, 2) == '0-'
if not ep then
  -- Nothing here now: a handshake or a "nothing here" position goes on from now; a cursor into
  -- a lineage that is gone is reset.
  local reset = 1
  if ARGV[2] == '' or empty then reset = 0 end
  return {ARGV[1], '0-' .. nowMs, reset, {}}
end
if ARGV[2] == '' then return {ep, last, 0, {}} end
local since = redis.call('HGET', KEYS[2], 'since')
if ARGV[2] ~= ep then
  if empty and not since then
    local first = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)
    if first[1] then
      local fields = first[1][2]
      local prev = nil
      for i = 1, #fields, 2 do
        if fields[i] == 'p' then prev = fields[i + 1] end
      end
      local born = tonumber(string.match(first[1][1], '^(%d+)'))
      local at = tonumber(string.sub(ARGV[3], 3))
      if prev == '0-0' and born - at < tonumber(ARGV[5]) then
        return {ep, last, 0, redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', tonumber(ARGV[4]) + 1)}
      end
    end
  end
  return {ep, resume(since or '0-0'), 1, {}}
end
local cursor = ARGV[3]
if cursor == last then return {ep, last, 0, {}} end
local entries = redis.pcall('XRANGE', KEYS[1], '(' .. cursor, '+', 'COUNT', tonumber(ARGV[4]) + 1)
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
 * KEYS: stream, meta. ARGV: global epoch, limit, max age ms (0 = any age).
 * Returns {epoch, newest id, entries newest first}.
 */
export const RECENT = script(
  `${LOOK}
if not ep then return {ARGV[1], '0-' .. nowMs, {}} end
if tonumber(ARGV[2]) == 0 then return {ep, last, {}} end
local oldest = '-'
if tonumber(ARGV[3]) > 0 then
  oldest = string.format('%.0f', tonumber(nowMs) - tonumber(ARGV[3]))
end
return {ep, last, redis.call('XREVRANGE', KEYS[1], '+', oldest, 'COUNT', tonumber(ARGV[2]))}
`,
  2,
);

// The publish itself, of one message or of a batch. KEYS[1] stream, KEYS[2] meta; ARGV: fresh
// epoch, max length (0 = none), max age ms (0 = none), wake-up channel, topic, max bytes
// (0 = none), stream ttl ms and meta ttl ms (0 = no expiry), idempotency ttl ms (PUBLISH_ONCE
// only), then the JSON data of each message from ARGV[10] on. Every message is appended with
// its predecessor's id; the trims, the TTLs and the one wake-up come after the last.
// `append(list)` appends the JSON data of `list` so (presence computes its own); APPEND appends
// ARGV[10] on and leaves `ep` and `ids`.
const APPEND_FUNCTION = `
local function append(list)
local ep = redis.call('HGET', KEYS[2], 'epoch')
local exists = redis.call('EXISTS', KEYS[1]) == 1
local prev = '0-0'
if exists then
  local newest = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
  if newest[1] then prev = newest[1][1] end
elseif ep then
  -- The stream expired or was evicted while its meta lives: go on from the newest id ever
  -- published, so that a cursor there continues and any other one resets. A meta without
  -- \`last\` (written before it existed) cannot say: a new epoch resets every cursor.
  local known = redis.call('HGET', KEYS[2], 'last')
  if known then prev = known
  elseif redis.call('HEXISTS', KEYS[2], 'pub') == 1 then ep = false end
end
if not ep then
  ep = ARGV[1]
  redis.call('HSET', KEYS[2], 'epoch', ep)
  redis.call('HDEL', KEYS[2], 'since')
  -- The stream outlived the meta key: what it holds is from the epoch before.
  if prev ~= '0-0' then redis.call('HSET', KEYS[2], 'since', prev) end
end
-- A new stream's ids must follow \`prev\` even if the clock is behind it.
local first = '*'
if not exists and prev ~= '0-0' then
  local t = redis.call('TIME')
  local nowMs = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  local prevMs, prevSeq = string.match(prev, '^(%d+)-(%d+)$')
  if nowMs <= tonumber(prevMs) then
    first = prevMs .. '-' .. string.format('%.0f', tonumber(prevSeq) + 1)
  end
end
local avg = tonumber(redis.call('HGET', KEYS[2], 'avg') or string.len(list[1]))
local ids = {}
for _, json in ipairs(list) do
  prev = redis.call('XADD', KEYS[1], first, 'p', prev, 'd', json)
  first = '*'
  ids[#ids + 1] = prev
  avg = avg + (string.len(json) - avg) / 64
end
redis.call('HSET', KEYS[2], 'pub', '1', 'last', prev, 'avg', string.format('%.1f', avg))
-- The byte bound, as a length: max bytes over the running mean size of a message.
local maxLen = tonumber(ARGV[2])
local maxBytes = tonumber(ARGV[6])
if maxBytes > 0 then
  local byBytes = math.max(1, math.floor(maxBytes / math.max(avg, 1)))
  if maxLen == 0 or byBytes < maxLen then maxLen = byBytes end
end
if maxLen > 0 then redis.call('XTRIM', KEYS[1], 'MAXLEN', '~', maxLen) end
local maxAge = tonumber(ARGV[3])
if maxAge > 0 then
  local ms = tonumber(string.match(prev, '^(%d+)'))
  redis.call('XTRIM', KEYS[1], 'MINID', '~', string.format('%.0f', ms - maxAge))
end
if tonumber(ARGV[7]) > 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[7])
  redis.call('PEXPIRE', KEYS[2], ARGV[8])
else
  redis.call('PERSIST', KEYS[1])
  redis.call('PERSIST', KEYS[2])
end
redis.call('PUBLISH', ARGV[4], ARGV[5])
return ep, ids
end
`;

const APPEND = `${APPEND_FUNCTION}
local ep, ids = append({unpack(ARGV, 10)})
`;

/**
 * KEYS: stream, meta. ARGV: as APPEND above, with '' for the idempotency ttl, then the JSON data
 * of one or more messages, in order.
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
 * {@link PUBLISH} of one message once per idempotency key: KEYS adds the record, ARGV[9] is its
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
redis.call('SET', KEYS[3], ep .. ':' .. ids[1], 'PX', ARGV[9])
return {ep, ids[1]}
`,
  3,
);

// Presence. KEYS: stream, meta, members (sorted set), member data (hash) of a presence topic;
// ARGV[1..9] as PUBLISH's. Removes the members whose TTL passed (by the Redis clock, the same
// for every instance), appending a leave for each. Leaves `now`, `left` and `leaveOf`.
const PRESENCE_SWEEP = `${APPEND_FUNCTION}
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local function leaveOf(json) return '{"event":"leave","member":' .. json .. '}' end
local gone = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now)
local left = {}
for _, id in ipairs(gone) do
  local json = redis.call('HGET', KEYS[4], id)
  redis.call('ZREM', KEYS[3], id)
  redis.call('HDEL', KEYS[4], id)
  if json then left[#left + 1] = leaveOf(json) end
end
if #left > 0 then append(left) end
`;

/**
 * KEYS: stream, meta, members, data. ARGV: PUBLISH's nine, member id, member JSON, ttl ms.
 * Sweeps, then adds or renews the member; appends a join when it is new (or had expired) or its
 * JSON changed. Returns 1 after a join, 0 after a plain renewal.
 */
export const PRESENCE_JOIN = script(
  `${PRESENCE_SWEEP}
local ttl = tonumber(ARGV[12])
local old = redis.call('HGET', KEYS[4], ARGV[10])
redis.call('ZADD', KEYS[3], now + ttl, ARGV[10])
redis.call('PEXPIRE', KEYS[3], ttl * 2)
if old == ARGV[11] then
  redis.call('PEXPIRE', KEYS[4], ttl * 2)
  return 0
end
redis.call('HSET', KEYS[4], ARGV[10], ARGV[11])
redis.call('PEXPIRE', KEYS[4], ttl * 2)
append({'{"event":"join","member":' .. ARGV[11] .. '}'})
return 1
`,
  4,
);

/** KEYS: as PRESENCE_JOIN. ARGV: PUBLISH's nine, member id. Appends a leave when it was there. */
export const PRESENCE_LEAVE = script(
  `${PRESENCE_SWEEP}
local json = redis.call('HGET', KEYS[4], ARGV[10])
redis.call('ZREM', KEYS[3], ARGV[10])
if not json then return 0 end
redis.call('HDEL', KEYS[4], ARGV[10])
append({leaveOf(json)})
return 1
`,
  4,
);

/** KEYS: as PRESENCE_JOIN. ARGV: PUBLISH's nine. Returns how many left. */
export const PRESENCE_SWEEP_ONLY = script(
  `${PRESENCE_SWEEP}
return #left
`,
  4,
);

/**
 * KEYS: as PRESENCE_JOIN. ARGV: PUBLISH's nine, the global epoch. Sweeps, then returns {epoch,
 * position, member JSONs}: the members after the messages up to the position (a READ handshake's
 * position: a topic without a meta key is at `<global epoch>:0-<now>`). Writes only leaves.
 */
export const PRESENCE_SNAPSHOT = script(
  `${PRESENCE_SWEEP}${LOOK}
local members = redis.call('HVALS', KEYS[4])
if not ep then return {ARGV[10], '0-' .. nowMs, members} end
return {ep, last, members}
`,
  4,
);

/** Every script, loaded on each connect. */
export const SCRIPTS: readonly Script[] = [
  READ,
  RECENT,
  PUBLISH,
  PUBLISH_ONCE,
  PRESENCE_JOIN,
  PRESENCE_LEAVE,
  PRESENCE_SWEEP_ONLY,
  PRESENCE_SNAPSHOT,
];
