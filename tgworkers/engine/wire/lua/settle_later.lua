#!lua flags=allow-oom
-- settle_later: move jobs this consumer owns back to the delayed set, to run
-- again at a given time (retry with backoff, not-due snooze, exclusivity wait).
--
-- KEYS[1] ready stream  KEYS[2] delayed zset  KEYS[3] delayed jobs hash
-- KEYS[4] jobs hash     KEYS[5] stats hash    KEYS[6..] exclusivity locks
-- ARGV[1] group  ARGV[2] consumer  ARGV[3] job count
-- ARGV[4] snooze floor ms  ARGV[5] snooze cap ms
-- then per job: entry id, job id, at ms (0 = use delay), delay ms,
--               kind (retry | snooze), fields as a JSON array, lock index,
--               fencing token, past-due snoozes so far
-- returns  {refused entry ids, earliest due ms of the batch}
--
-- Atomic per job: the entry leaves the stream only as the job enters the set.
--
-- A snooze whose due time is not after Redis's now (a peer's or the worker's
-- clock behind Redis) would be promoted at once and spin; it waits at least
-- floor * 2^(n-1) ms instead (n = its past-due snoozes, capped), and n travels
-- in the job's fields as `snoozes`.
-- Fencing: an entry is ours only while XPENDING names this consumer AND the
-- delivery count it shows equals the token read when we claimed it (1 for a
-- read, n for the n-th delivery). Any reclaim, our own sweep's included, bumps
-- the count, so an older delivery of the same entry can change nothing.
-- A lock is released only while it names this delivery (`<entry id>/<token>`, acquire_keys).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local floor, cap = tonumber(ARGV[4]), tonumber(ARGV[5])
local refused, earliest, i = {}, -1, 6
for _ = 1, tonumber(ARGV[3]) do
  local entry, id, at, delay = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2]), tonumber(ARGV[i + 3])
  local kind, json, lock = ARGV[i + 4], ARGV[i + 5], tonumber(ARGV[i + 6])
  local token, snoozes = tonumber(ARGV[i + 7]), tonumber(ARGV[i + 8])
  i = i + 9
  local p = redis.call('XPENDING', KEYS[1], ARGV[1], entry, entry, 1)
  if p[1] and p[1][2] == ARGV[2] and p[1][4] == token then
    local due = at > 0 and at or now + delay
    if kind == 'snooze' and due <= now then
      local n = snoozes + 1
      due = now + math.min(floor * 2 ^ math.min(n - 1, 30), cap)
      json = string.sub(json, 1, -2) .. ',"snoozes","' .. n .. '"]'
    end
    redis.call('XACK', KEYS[1], ARGV[1], entry)
    redis.call('XDEL', KEYS[1], entry)
    redis.call('ZADD', KEYS[2], due, id)
    redis.call('HSET', KEYS[3], id, json)
    redis.call('HSET', KEYS[4], id, 'd')
    if kind == 'retry' then
      redis.call('HINCRBY', KEYS[5], 'retried', 1)
      redis.call('HINCRBY', KEYS[5], 'failed', 1)
    end
    if lock > 0 and redis.call('GET', KEYS[lock]) == entry .. '/' .. token then
      redis.call('DEL', KEYS[lock])
    end
    if earliest < 0 or due < earliest then earliest = due end
  else
    refused[#refused + 1] = entry
  end
end
return {refused, earliest}
