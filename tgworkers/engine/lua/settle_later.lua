-- settle_later: move jobs this consumer owns back to the delayed set, to run
-- again at a given time (retry with backoff, not-due snooze, exclusivity wait).
--
-- KEYS[1] ready stream  KEYS[2] delayed zset  KEYS[3] delayed jobs hash
-- KEYS[4] jobs hash     KEYS[5] stats hash    KEYS[6..] exclusivity locks
-- ARGV[1] group  ARGV[2] consumer  ARGV[3] job count
-- then per job: entry id, job id, at ms (0 = use delay), delay ms,
--               kind (retry | snooze), fields as a JSON array, lock index
-- returns  {refused entry ids, earliest due ms of the batch}
--
-- Atomic per job: the entry leaves the stream only as the job enters the set.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local refused, earliest, i = {}, -1, 4
for _ = 1, tonumber(ARGV[3]) do
  local entry, id, at, delay = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2]), tonumber(ARGV[i + 3])
  local kind, json, lock = ARGV[i + 4], ARGV[i + 5], tonumber(ARGV[i + 6])
  i = i + 7
  local p = redis.call('XPENDING', KEYS[1], ARGV[1], entry, entry, 1)
  if p[1] and p[1][2] == ARGV[2] then
    local due = at > 0 and at or now + delay
    redis.call('XACK', KEYS[1], ARGV[1], entry)
    redis.call('XDEL', KEYS[1], entry)
    redis.call('ZADD', KEYS[2], due, id)
    redis.call('HSET', KEYS[3], id, json)
    redis.call('HSET', KEYS[4], id, 'd')
    if kind == 'retry' then
      redis.call('HINCRBY', KEYS[5], 'retried', 1)
      redis.call('HINCRBY', KEYS[5], 'failed', 1)
    end
    if lock > 0 and redis.call('GET', KEYS[lock]) == id then redis.call('DEL', KEYS[lock]) end
    if earliest < 0 or due < earliest then earliest = due end
  else
    refused[#refused + 1] = entry
  end
end
return {refused, earliest}
