-- Take or renew a lease: the archiver of a room holds it while it copies the room's
-- stream to PostgreSQL, so that normally one backend archives each room. Losing it is
-- harmless (archiving is idempotent); it only saves duplicate work.
-- KEYS: 1 lease key.  ARGV: 1 owner, 2 ttl ms.  Returns 1 if the caller holds the lease.
local cur = redis.call('GET', KEYS[1])
if cur == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if not cur then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
