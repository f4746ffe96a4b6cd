-- renew_leases: reset the idle time of entries this consumer still owns (and
-- extend their exclusivity locks), so a live job is never reclaimed.
--
-- KEYS[1] ready stream  KEYS[2..] exclusivity locks
-- ARGV[1] group  ARGV[2] consumer  ARGV[3] lock ttl ms  ARGV[4] entry count
-- then per entry: entry id, job id, lock index (0 = none)
-- returns  the entry ids this consumer lost (owned by another now, or gone)
--
-- Ownership is checked first: a worker that was paused past the visibility
-- timeout can never take back an entry another worker reclaimed.
local lost, i = {}, 5
for _ = 1, tonumber(ARGV[4]) do
  local entry, id, lock = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2])
  i = i + 3
  local p = redis.call('XPENDING', KEYS[1], ARGV[1], entry, entry, 1)
  local ok = p[1] and p[1][2] == ARGV[2]
  if ok and lock > 0 then
    local holder = redis.call('GET', KEYS[lock])
    if holder == id then
      redis.call('PEXPIRE', KEYS[lock], ARGV[3])
    elseif not holder then
      redis.call('SET', KEYS[lock], id, 'PX', ARGV[3])
    else
      ok = false
    end
  end
  if ok then
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, entry, 'JUSTID')
  else
    lost[#lost + 1] = entry
  end
end
return lost
