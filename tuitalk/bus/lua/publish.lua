-- Sequence one room event: dedup -> lineage/epoch check -> HINCRBY seq -> XADD -> trim.
--
-- It does NOT fan out. The caller runs WAIT on the same connection and then commit.lua,
-- which publishes everything up to the replicated seq. So no client ever sees a message
-- that a failover could still roll back, and a sequence number is never shown twice.
--
-- KEYS: 1 meta hash, 2 stream, 3 members hash, 4 dedup key, 5 join points hash
-- ARGV: 1 user, 2 client id, 3 name, 4 kind, 5 text, 6 floor seq for a fresh meta (-1: none),
--       7 soft max stream length, 8 hard max stream length, 9 dedup ttl seconds
-- Returns {status, epoch, seq, connected_replicas, ts_ms}
--   status: "ok" | "dup" (id seen: original epoch/seq) | "noop" (join while member)
--           | "not_member" | "no_meta" (call again with a floor)
local meta, stream, members, dedup, joins = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local user, id, name, kind, text = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local floor, soft, hard, ttl = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9])

local info = redis.call('INFO', 'replication')
local rid = string.match(info, 'master_replid:(%w+)') or 'none'
local nrep = tonumber(string.match(info, 'connected_slaves:(%d+)') or '0')

local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

local prior = redis.call('GET', dedup)
if prior then
  -- A write, so that a WAIT after this script covers the original write of this id too
  -- (WAIT waits for this connection's last write offset, which is now >= the original's).
  redis.call('HINCRBY', meta, 'dups', 1)
  local e, s = string.match(prior, '^([^:]+):(%d+)$')
  return {'dup', e, tonumber(s), nrep, now_ms}
end

local is_member = redis.call('HEXISTS', members, user) == 1
if kind == 'join' then
  if is_member then
    redis.call('HINCRBY', meta, 'dups', 1)
    local m = redis.call('HMGET', meta, 'epoch', 'commit')
    return {'noop', m[1] or '', tonumber(m[2] or '0'), nrep, now_ms}
  end
elseif not is_member then
  return {'not_member', '', 0, nrep, now_ms}
end

local function new_epoch()
  -- Unique without randomness (scripts are deterministic): the node's clock in
  -- microseconds plus a prefix of its replication id.
  return string.format('%x%05x', tonumber(t[1]), tonumber(t[2])) .. string.sub(rid, 1, 6)
end

local m = redis.call('HMGET', meta, 'epoch', 'seq', 'rid', 'epochs')
local epoch, seq = m[1], tonumber(m[2] or '0')
if not epoch then
  -- A room without meta: new, or its shard lost its data. The caller passes floor -1
  -- first; on 'no_meta' it looks up the highest archived seq and calls again with it,
  -- so history stays in seq order even after a shard lost everything.
  if floor < 0 then
    return {'no_meta', '', 0, nrep, now_ms}
  end
  seq = floor
  epoch = new_epoch()
  redis.call('HSET', meta, 'epoch', epoch, 'seq', seq, 'commit', seq, 'arch', seq,
             'rid', rid, 'epochs', epoch .. ':' .. (seq + 1), 'created', now_ms)
elseif m[3] ~= rid then
  -- The shard's data lineage changed (failover or restart) since this room last wrote:
  -- writes after the last replicated one may be gone and their seqs could be issued
  -- again, so the room moves to a new epoch. Seqs continue from what survived.
  epoch = new_epoch()
  local epochs = (m[4] or '') .. ',' .. epoch .. ':' .. (seq + 1)
  -- Keep the last 16 transitions: cursors older than that are reset, not continued.
  local n = select(2, string.gsub(epochs, ',', ','))
  while n >= 16 do
    epochs = string.sub(epochs, string.find(epochs, ',') + 1)
    n = n - 1
  end
  redis.call('HSET', meta, 'epoch', epoch, 'rid', rid, 'epochs', epochs)
end

seq = redis.call('HINCRBY', meta, 'seq', 1)
redis.call('XADD', stream, seq .. '-0', 'e', epoch, 'i', id, 'u', user, 'n', name,
           'k', kind, 'x', text, 'ts', now_ms)

-- Trim to the soft length, but never past what the archiver has stored in PostgreSQL,
-- unless the stream grows past the hard length (then the archive loses the oldest).
local arch = tonumber(redis.call('HGET', meta, 'arch') or '0')
local minid = math.min(seq - soft + 1, arch + 1)
minid = math.max(minid, seq - hard + 1)
if minid > 1 then
  redis.call('XTRIM', stream, 'MINID', '~', minid)
end

if kind == 'join' or kind == 'nick' then
  redis.call('HSET', members, user, name)
elseif kind == 'leave' then
  redis.call('HDEL', members, user)
  redis.call('HDEL', joins, user)
end
if kind == 'join' then
  -- Where the user's membership began: a client that never got its "joined" reply
  -- (disconnect) resumes from here instead of from the room's head.
  redis.call('HSET', joins, user, epoch .. ':' .. seq)
end
redis.call('SET', dedup, epoch .. ':' .. seq, 'EX', ttl)
return {'ok', epoch, seq, nrep, now_ms}
