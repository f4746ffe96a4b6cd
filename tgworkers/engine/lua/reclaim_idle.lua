-- reclaim_idle: take over entries idle past the visibility timeout (their worker
-- died or stalled), one XAUTOCLAIM page, with each entry's delivery count.
--
-- KEYS[1] ready stream
-- ARGV[1] group  ARGV[2] consumer  ARGV[3] min idle ms  ARGV[4] start cursor
-- ARGV[5] max entries to claim
-- returns  {next cursor, {{entry id, delivery count, fields}...}, {deleted ids}}
--
-- Claiming resets idle time, so two sweepers never both take one entry. Ids whose
-- entries were deleted while pending come back in the third element and are
-- dropped from the PEL by Redis (7.0+); the caller counts them as lost.
local r = redis.call('XAUTOCLAIM', KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4], 'COUNT', ARGV[5])
local claimed = {}
for _, e in ipairs(r[2]) do
  local p = redis.call('XPENDING', KEYS[1], ARGV[1], e[1], e[1], 1)
  claimed[#claimed + 1] = {e[1], p[1] and p[1][4] or 1, e[2] or {}}
end
return {r[1], claimed, r[3] or {}}
