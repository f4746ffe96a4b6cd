-- record_steps: remember the finished steps of a multi-step job, fenced.
--
-- KEYS[1] ready stream  KEYS[2] steps hash
-- ARGV[1] group  ARGV[2] consumer  ARGV[3] entry id  ARGV[4] fencing token
-- ARGV[5] job id  ARGV[6] the finished steps as a JSON array
-- returns  1 recorded, 0 refused (this delivery no longer holds the entry)
--
-- Written only while XPENDING names this consumer and this delivery count: a
-- zombie run (its entry reclaimed, or already settled) can neither recreate a
-- record the settle removed nor mark a step the new run has not done.
local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1)
if not (p[1] and p[1][2] == ARGV[2] and p[1][4] == tonumber(ARGV[4])) then
  return 0
end
redis.call('HSET', KEYS[2], ARGV[5], ARGV[6])
return 1
