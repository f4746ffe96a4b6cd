#!lua flags=allow-oom
-- reclaim_idle: take over entries idle past the visibility timeout (their worker
-- died or stalled), one XAUTOCLAIM page, with each entry's delivery count.
--
-- KEYS[1] ready stream  KEYS[2] stats hash
-- ARGV[1] group  ARGV[2] consumer  ARGV[3] min idle ms  ARGV[4] start cursor
-- ARGV[5] max entries to claim  ARGV[6] max deliveries
-- ARGV[7] repeat-suspect threshold (deliveries)  ARGV[8] repeat suspects we may take
-- returns  {next cursor, {{entry id, delivery count, fields}...}, {deleted ids}}
--
-- Claiming resets idle time, so two sweepers never both take one entry. Ids whose
-- entries were deleted while pending come back in the third element and are
-- dropped from the PEL by Redis (7.0+); they are counted as `lost` in the stats
-- hash here, in the same step, so the count survives a worker dying right after.
--
-- A repeat suspect (delivered ARGV[7] times or more, not yet poison) has been on
-- workers that died. Two of them on one worker would die together, and the job
-- that did not crash it would be charged a delivery each time until it is
-- quarantined as poison beside the real one. So a worker takes at most ARGV[8] of
-- them; any other is left as it was: idle (the next sweep of any worker may take
-- it) and with its delivery count restored (RETRYCOUNT, JUSTID claims no delivery).
-- The restore names this sweeper, so a delivery of it with that count is valid again;
-- but the count restored is the one the entry had before this call and a claim that
-- is run raises it, so only the newest delivery handed out can ever match (the
-- fencing token of issue #22 item 6, ruled out by test_scripts.py).
local r = redis.call('XAUTOCLAIM', KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4], 'COUNT', ARGV[5])
local max, threshold, room = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
local claimed = {}
for _, e in ipairs(r[2]) do
  local p = redis.call('XPENDING', KEYS[1], ARGV[1], e[1], e[1], 1)
  local n = p[1] and p[1][4] or 1
  local suspect = n >= threshold and n <= max
  if suspect and room <= 0 then
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, e[1],
      'IDLE', ARGV[3], 'RETRYCOUNT', n - 1, 'JUSTID')
  else
    if suspect then room = room - 1 end
    claimed[#claimed + 1] = {e[1], n, e[2] or {}}
  end
end
local deleted = r[3] or {}
if #deleted > 0 then redis.call('HINCRBY', KEYS[2], 'lost', #deleted) end
return {r[1], claimed, deleted}
