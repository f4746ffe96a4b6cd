#!lua flags=allow-oom
-- hand_back: give unfinished jobs back to the queue on shutdown, so another
-- worker takes them at once instead of after the visibility timeout.
--
-- KEYS[1] ready stream  KEYS[2] jobs hash  KEYS[3..] exclusivity locks
-- ARGV[1] group  ARGV[2] consumer  ARGV[3] job count
-- then per job: entry id, job id, lock index, fencing token, field count, fields...
-- returns  number of jobs handed back
--
-- The job is re-added as a fresh entry with the same id and attempt: a hand-back
-- is not a failure and spends nothing.
-- Fencing: an entry is ours only while XPENDING names this consumer AND the
-- delivery count it shows equals the token read when we claimed it (1 for a
-- read, n for the n-th delivery). Any reclaim, our own sweep's included, bumps
-- the count, so an older delivery of the same entry can change nothing.
-- A lock is released only while it names this delivery (`<entry id>/<token>`, acquire_keys).
local moved, i = 0, 4
for _ = 1, tonumber(ARGV[3]) do
  local entry, id, lock = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2])
  local token, n = tonumber(ARGV[i + 3]), tonumber(ARGV[i + 4])
  local fields = {unpack(ARGV, i + 5, i + 4 + n)}
  i = i + 5 + n
  local p = redis.call('XPENDING', KEYS[1], ARGV[1], entry, entry, 1)
  if p[1] and p[1][2] == ARGV[2] and p[1][4] == token then
    redis.call('XACK', KEYS[1], ARGV[1], entry)
    redis.call('XDEL', KEYS[1], entry)
    local fresh = redis.call('XADD', KEYS[1], '*', unpack(fields))
    redis.call('HSET', KEYS[2], id, 'r:' .. fresh)
    if lock > 0 and redis.call('GET', KEYS[lock]) == entry .. '/' .. token then
      redis.call('DEL', KEYS[lock])
    end
    moved = moved + 1
  end
end
return moved
