-- Mark everything up to ARGV[1] as replicated and fan it out, in seq order, exactly once.
--
-- Called after WAIT confirmed the write of seq ARGV[1] (replication is one ordered stream
-- per master, so every lower seq is replicated too), or with no replica to wait for.
-- Publishing the whole range from the last commit keeps pub/sub in seq order even when
-- two backends' WAITs return in the opposite order.
--
-- KEYS: 1 meta hash, 2 stream, 3 shard channel
-- ARGV: 1 seq to commit up to
-- Returns the commit watermark after the call.
local meta, stream, channel = KEYS[1], KEYS[2], KEYS[3]
local upto = tonumber(ARGV[1])
local m = redis.call('HMGET', meta, 'commit', 'seq')
local c, seq = tonumber(m[1] or '0'), tonumber(m[2] or '0')
if upto > seq then upto = seq end
if upto <= c then return c end
local entries = redis.call('XRANGE', stream, c + 1, upto)
for _, e in ipairs(entries) do
  local f = e[2]
  local h = {}
  for i = 1, #f, 2 do h[f[i]] = f[i + 1] end
  local s = tonumber(string.match(e[1], '^(%d+)'))
  redis.call('SPUBLISH', channel,
    cjson.encode({h['e'], s, h['i'], h['u'], h['n'], h['k'], h['x'], tonumber(h['ts'])}))
end
redis.call('HSET', meta, 'commit', upto)
return upto
