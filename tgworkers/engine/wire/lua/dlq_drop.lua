#!lua flags=allow-oom
-- dlq_drop: delete dead-lettered jobs for good (an operator's decision).
--
-- KEYS[1] dead-letter stream  KEYS[2] jobs hash  KEYS[3] steps hash
-- ARGV[1] job count, then per job: dead-letter entry id, job id
-- returns  number of entries deleted
local dropped, i = 0, 2
for _ = 1, tonumber(ARGV[1]) do
  local dead, id = ARGV[i], ARGV[i + 1]
  i = i + 2
  if redis.call('XDEL', KEYS[1], dead) == 1 then
    dropped = dropped + 1
    if id ~= '' and redis.call('HGET', KEYS[2], id) == 'x:' .. dead then
      redis.call('HDEL', KEYS[2], id)
      redis.call('HDEL', KEYS[3], id)
    end
  end
end
return dropped
