-- rate_take: take one permit of a rate limit shared by every worker (GCRA).
--
-- KEYS[1] limit hash   {prefix}:rate:<scope>:<name>
--         fields tat (µs), perS, allowed, waited, refused
-- ARGV[1] permits per second (> 0)
-- ARGV[2] burst: permits that may go at once after a quiet spell (>= 1)
-- ARGV[3] longest wait (ms) the caller will sleep for a booked permit
-- returns {wait ms, booked}: booked 1 = the permit is the caller's after
--         wait ms (0: at once); booked 0 = refused, nothing taken: ask again
--         in wait ms (it was over ARGV[3])
--
-- GCRA: the theoretical arrival time `tat` moves one emission interval per
-- permit; a permit is free while tat - now <= (burst - 1) intervals. A booked
-- permit moves tat too, so callers that sleep their wait never collide. "Now"
-- is Redis's clock (TIME): workers' clocks never enter the sum.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = 1000000 / tonumber(ARGV[1])
local tolerance = interval * (tonumber(ARGV[2]) - 1)
local tat = tonumber(redis.call('HGET', KEYS[1], 'tat') or now)
if tat < now then tat = now end
local wait = tat - tolerance - now
if wait < 0 then wait = 0 end
local wait_ms = math.ceil(wait / 1000)
redis.call('HSET', KEYS[1], 'perS', ARGV[1])
if wait_ms > tonumber(ARGV[3]) then
  redis.call('HINCRBY', KEYS[1], 'refused', 1)
  return {wait_ms, 0}
end
redis.call('HSET', KEYS[1], 'tat', string.format('%.0f', tat + interval))
if wait_ms > 0 then
  redis.call('HINCRBY', KEYS[1], 'waited', 1)
else
  redis.call('HINCRBY', KEYS[1], 'allowed', 1)
end
return {wait_ms, 1}
