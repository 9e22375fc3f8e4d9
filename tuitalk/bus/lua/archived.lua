-- Raise the room's archive watermark (never lower it): entries up to it are in PostgreSQL
-- and the stream may trim them.
-- KEYS: 1 meta hash.  ARGV: 1 archived seq.  Returns the watermark.
local a = tonumber(redis.call('HGET', KEYS[1], 'arch') or '0')
local n = tonumber(ARGV[1])
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if n > a then
  redis.call('HSET', KEYS[1], 'arch', n)
  return n
end
return a
