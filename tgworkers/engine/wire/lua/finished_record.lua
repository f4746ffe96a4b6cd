-- finished_record: remember finished jobs for lookup, and forget ones older than the window.
--
-- KEYS[1] finished hash      {q:p}:finished        job id -> record (JSON)
-- KEYS[2] finished-at zset   {q:p}:finished:at     job id -> finish time (ms)
-- KEYS[3] finished-ids zset  {q:p}:finished:ids    job id, score 0 (lex index: prefix search)
-- ARGV[1] keep ms (DEDUPE_TTL_S)  ARGV[2] most records to forget in one call
-- then per job: id, finish ms, record
-- returns how many old records were forgotten
--
-- Twice = once (HSET and ZADD overwrite). "Now" for the window is Redis's clock.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
for i = 3, #ARGV, 3 do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 2])
  redis.call('ZADD', KEYS[2], ARGV[i + 1], ARGV[i])
  redis.call('ZADD', KEYS[3], 0, ARGV[i])
end
local cutoff = '(' .. (now - tonumber(ARGV[1]))
local old = redis.call('ZRANGE', KEYS[2], '-inf', cutoff, 'BYSCORE', 'LIMIT', 0, tonumber(ARGV[2]))
if #old > 0 then
  redis.call('HDEL', KEYS[1], unpack(old))
  redis.call('ZREM', KEYS[2], unpack(old))
  redis.call('ZREM', KEYS[3], unpack(old))
end
return #old
