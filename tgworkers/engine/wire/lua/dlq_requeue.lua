-- dlq_requeue: move dead-lettered jobs back onto the ready stream, same job id.
--
-- KEYS[1] dead-letter stream  KEYS[2] ready stream  KEYS[3] jobs hash
-- ARGV[1] job count, then per job: dead-letter entry id, job id, field count, fields...
-- returns  one integer per job: 1 requeued, 0 skipped (no longer in the DLQ)
--
-- The existence check and the move are one step, so two replays of one entry
-- (an operator and the dlq.replay job) requeue it once.
local out, i = {}, 2
for j = 1, tonumber(ARGV[1]) do
  local dead, id, n = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2])
  local fields = {unpack(ARGV, i + 3, i + 2 + n)}
  i = i + 3 + n
  if redis.call('XDEL', KEYS[1], dead) == 1 then
    local entry = redis.call('XADD', KEYS[2], '*', unpack(fields))
    if id ~= '' then redis.call('HSET', KEYS[3], id, 'r:' .. entry) end
    out[j] = 1
  else
    out[j] = 0
  end
end
return out
