#!lua flags=allow-oom
-- hold_locks: extend or release the exclusivity locks of lost runs still finishing,
-- each only while it still names that run's delivery (promise 6).
--
-- KEYS[1..n] exclusivity locks (one partition's)
-- ARGV[1] lock ttl ms: extend to it; 0: release (delete) instead
-- then per lock, in KEYS order: entry id, fencing token
-- returns  one integer per lock: 1 extended (or released), 0 not ours (left alone)
--
-- A run whose delivery was lost (the watchdog, a renewal's verdict, our own sweep)
-- is cancelled but may await its clean-up before it returns; its lock, which names
-- the delivery (`<entry id>/<token>`, as acquire_keys wrote it), keeps the key's
-- other jobs out meanwhile, in every process. The lock is never taken here: one
-- that expired or names another delivery is left as it is. Released when the run
-- returns, so the key's next job need not wait out the TTL.
local out, ttl = {}, tonumber(ARGV[1])
for j = 1, #KEYS do
  local mine = ARGV[2 * j] .. '/' .. ARGV[2 * j + 1]
  if redis.call('GET', KEYS[j]) ~= mine then
    out[j] = 0
  elseif ttl > 0 then
    out[j] = redis.call('PEXPIRE', KEYS[j], ttl)
  else
    out[j] = redis.call('DEL', KEYS[j])
  end
end
return out
