#!lua flags=allow-oom
-- job_delete: delete one job no worker holds: a ready entry not yet delivered,
-- or a delayed job (an operator's single-job delete).
--
-- KEYS[1] ready stream  KEYS[2] delayed zset  KEYS[3] delayed jobs hash
-- KEYS[4] jobs hash
-- ARGV[1] group  ARGV[2] job id
-- returns 'ready' or 'delayed' (deleted from there), else where the job is and
--         nothing changed: 'inflight' (a consumer holds it: cancel it),
--         'dead' (in the DLQ: drop it there) or 'missing'
--
-- Atomic: a job a worker is about to read is either deleted first (XREADGROUP
-- skips a deleted entry) or delivered first (then it is in flight, and kept).
local state = redis.call('HGET', KEYS[4], ARGV[2])
if not state then return 'missing' end
if state == 'd' then
  redis.call('ZREM', KEYS[2], ARGV[2])
  redis.call('HDEL', KEYS[3], ARGV[2])
  redis.call('HDEL', KEYS[4], ARGV[2])
  return 'delayed'
end
local kind, entry = string.match(state, '^(%a):(.+)$')
if kind == 'x' then return 'dead' end
if kind ~= 'r' then return 'missing' end
local ok, p = pcall(redis.call, 'XPENDING', KEYS[1], ARGV[1], entry, entry, 1)
if ok and p[1] then return 'inflight' end
redis.call('XDEL', KEYS[1], entry)
redis.call('HDEL', KEYS[4], ARGV[2])
return 'ready'
