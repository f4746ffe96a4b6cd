#!lua flags=allow-oom
-- renew_leases: reset the idle time of entries this consumer still owns (and
-- extend their exclusivity locks), so a live job is never reclaimed.
--
-- KEYS[1] ready stream  KEYS[2] jobs hash  KEYS[3] stats hash  KEYS[4] steps hash
-- KEYS[5..] locks
-- ARGV[1] group  ARGV[2] consumer  ARGV[3] lock ttl ms  ARGV[4] entry count
-- then per entry: entry id, job id, lock index (0 = none), fencing token
-- returns  {entry ids this delivery lost (another consumer or a later delivery owns them),
--           entry ids deleted from the stream behind the engine's back}
--
-- A lock is extended only while it names this delivery (`<entry id>/<token>`),
-- and taken again if it expired meanwhile; a lock another delivery took loses ours.
-- Ownership is checked first: a worker that was paused past the visibility
-- timeout can never take back an entry another worker reclaimed. An entry we
-- hold whose data was deleted (XDEL/XTRIM) is acknowledged, forgotten and
-- counted as lost here, in the same step, and its step record goes with it.
-- Fencing: an entry is ours only while XPENDING names this consumer AND the
-- delivery count it shows equals the token read when we claimed it (1 for a
-- read, n for the n-th delivery). Any reclaim, our own sweep's included, bumps
-- the count, so an older delivery of the same entry can change nothing.
local lost, deleted, i = {}, {}, 5
for _ = 1, tonumber(ARGV[4]) do
  local entry, id, lock, token = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2]), tonumber(ARGV[i + 3])
  i = i + 4
  local p = redis.call('XPENDING', KEYS[1], ARGV[1], entry, entry, 1)
  local ok = p[1] and p[1][2] == ARGV[2] and p[1][4] == token
  local mine = entry .. '/' .. token
  if ok and #redis.call('XRANGE', KEYS[1], entry, entry) == 0 then
    redis.call('XACK', KEYS[1], ARGV[1], entry)
    if id ~= '' and redis.call('HGET', KEYS[2], id) == 'r:' .. entry then
      redis.call('HDEL', KEYS[2], id)
      redis.call('HDEL', KEYS[4], id)
    end
    redis.call('HINCRBY', KEYS[3], 'lost', 1)
    if lock > 0 and redis.call('GET', KEYS[lock]) == mine then redis.call('DEL', KEYS[lock]) end
    deleted[#deleted + 1] = entry
  else
    if ok and lock > 0 then
      local holder = redis.call('GET', KEYS[lock])
      if holder == mine then
        redis.call('PEXPIRE', KEYS[lock], ARGV[3])
      elseif not holder then
        redis.call('SET', KEYS[lock], mine, 'PX', ARGV[3])
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
