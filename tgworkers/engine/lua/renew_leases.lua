-- renew_leases: reset the idle time of entries this consumer still owns (and
-- extend their exclusivity locks), so a live job is never reclaimed.
--
-- KEYS[1] ready stream  KEYS[2] jobs hash  KEYS[3] stats hash  KEYS[4..] locks
-- ARGV[1] group  ARGV[2] consumer  ARGV[3] lock ttl ms  ARGV[4] entry count
-- then per entry: entry id, job id, lock index (0 = none)
-- returns  {entry ids this consumer lost (owned by another now),
--           entry ids deleted from the stream behind the engine's back}
--
-- Ownership is checked first: a worker that was paused past the visibility
-- timeout can never take back an entry another worker reclaimed. An entry we
-- hold whose data was deleted (XDEL/XTRIM) is acknowledged, forgotten and
-- counted as lost here, in the same step.
local lost, deleted, i = {}, {}, 5
for _ = 1, tonumber(ARGV[4]) do
  local entry, id, lock = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2])
  i = i + 3
  local p = redis.call('XPENDING', KEYS[1], ARGV[1], entry, entry, 1)
  local ok = p[1] and p[1][2] == ARGV[2]
  if ok and #redis.call('XRANGE', KEYS[1], entry, entry) == 0 then
    redis.call('XACK', KEYS[1], ARGV[1], entry)
    if id ~= '' and redis.call('HGET', KEYS[2], id) == 'r:' .. entry then
      redis.call('HDEL', KEYS[2], id)
    end
    redis.call('HINCRBY', KEYS[3], 'lost', 1)
    if lock > 0 and redis.call('GET', KEYS[lock]) == id then redis.call('DEL', KEYS[lock]) end
    deleted[#deleted + 1] = entry
  else
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
end
return {lost, deleted}
