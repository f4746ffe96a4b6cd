#!lua flags=allow-oom
-- dead_letter: move jobs this consumer owns to the dead-letter stream.
--
-- KEYS[1] ready stream  KEYS[2] dead-letter stream  KEYS[3] jobs hash
-- KEYS[4] stats hash    KEYS[5..] exclusivity locks
-- ARGV[1] group  ARGV[2] consumer  ARGV[3] job count
-- then per job: entry id, job id ('' when the entry had none), failed flag (1/0),
--               lock index, fencing token, field count, fields (envelope + reason)...
-- returns  the entry ids refused because another consumer owns them now
--
-- The dead-letter entry gets failed_ms from Redis's clock; the job id keeps
-- pointing at it so `dlq show ID` and unique enqueues find it.
-- Fencing: an entry is ours only while XPENDING names this consumer AND the
-- delivery count it shows equals the token read when we claimed it (1 for a
-- read, n for the n-th delivery). Any reclaim, our own sweep's included, bumps
-- the count, so an older delivery of the same entry can change nothing.
-- A lock is released only while it names this delivery (`<entry id>/<token>`, acquire_keys).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local refused, i = {}, 4
for _ = 1, tonumber(ARGV[3]) do
  local entry, id, failed, lock = ARGV[i], ARGV[i + 1], ARGV[i + 2], tonumber(ARGV[i + 3])
  local token, n = tonumber(ARGV[i + 4]), tonumber(ARGV[i + 5])
  local fields = {unpack(ARGV, i + 6, i + 5 + n)}
  i = i + 6 + n
  local p = redis.call('XPENDING', KEYS[1], ARGV[1], entry, entry, 1)
  if p[1] and p[1][2] == ARGV[2] and p[1][4] == token then
    fields[#fields + 1] = 'failed_ms'
    fields[#fields + 1] = tostring(now)
    local dead = redis.call('XADD', KEYS[2], '*', unpack(fields))
    redis.call('XACK', KEYS[1], ARGV[1], entry)
    redis.call('XDEL', KEYS[1], entry)
    if id ~= '' then redis.call('HSET', KEYS[3], id, 'x:' .. dead) end
    redis.call('HINCRBY', KEYS[4], 'dead', 1)
    if failed == '1' then redis.call('HINCRBY', KEYS[4], 'failed', 1) end
    if lock > 0 and redis.call('GET', KEYS[lock]) == entry .. '/' .. token then
      redis.call('DEL', KEYS[lock])
    end
  else
    refused[#refused + 1] = entry
  end
end
return refused
