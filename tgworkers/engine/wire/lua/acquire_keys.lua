#!lua flags=allow-oom
-- acquire_keys: take per-key exclusivity locks for delivered jobs; a job whose
-- key is held by another job waits in the delayed set instead (promise 6).
--
-- KEYS[1] ready stream  KEYS[2] delayed zset  KEYS[3] delayed jobs hash
-- KEYS[4] jobs hash     KEYS[5..] exclusivity locks
-- ARGV[1] group  ARGV[2] consumer  ARGV[3] lock ttl ms
-- ARGV[4] job count, then per job: entry id, job id, lock index, fields JSON,
--         fencing token, wait ms (how long a job whose key is held waits)
-- returns  one integer per job: 1 acquired, 0 waiting, -1 not owned by us
--
-- The lock names the delivery that holds it, `<entry id>/<fencing token>`, never
-- just the job id: two entries of one job id (a producer that retried its plain
-- XADD) are two runs, and so are two deliveries of one entry (a run lost to a
-- reclaim may still be finishing). Any other holder, an older delivery of the
-- same entry included, makes the job wait until it settles or its lock expires.
-- Fencing: an entry is ours only while XPENDING names this consumer AND the
-- delivery count it shows equals the token read when we claimed it (1 for a
-- read, n for the n-th delivery). Any reclaim, our own sweep's included, bumps
-- the count, so an older delivery of the same entry can change nothing.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local out, i = {}, 5
for j = 1, tonumber(ARGV[4]) do
  local entry, id, lock, json = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2]), ARGV[i + 3]
  local token, wait = tonumber(ARGV[i + 4]), tonumber(ARGV[i + 5])
  i = i + 6
  local p = redis.call('XPENDING', KEYS[1], ARGV[1], entry, entry, 1)
  local holder, mine = redis.call('GET', KEYS[lock]), entry .. '/' .. token
  if not (p[1] and p[1][2] == ARGV[2] and p[1][4] == token) then
    out[j] = -1
  elseif not holder or holder == mine then
    redis.call('SET', KEYS[lock], mine, 'PX', ARGV[3])
    out[j] = 1
  else
    redis.call('XACK', KEYS[1], ARGV[1], entry)
    redis.call('XDEL', KEYS[1], entry)
    redis.call('ZADD', KEYS[2], now + wait, id)
    redis.call('HSET', KEYS[3], id, json)
    redis.call('HSET', KEYS[4], id, 'd')
    out[j] = 0
  end
end
return out
