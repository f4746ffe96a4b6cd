-- promote_due: move delayed jobs whose due time has passed onto the ready stream.
--
-- KEYS[1] delayed zset   KEYS[2] delayed jobs hash   KEYS[3] ready stream
-- KEYS[4] jobs hash     KEYS[5] stats hash
-- ARGV[1] max jobs to move in one call
-- returns  {moved, lost, next due ms or -1, redis now ms}
--
-- Atomic: never lost, never doubled. "Now" is Redis's clock (TIME), not the
-- worker's. Each promoted entry carries due_ms so pickup latency is measurable.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local due = redis.call('ZRANGE', KEYS[1], '-inf', now, 'BYSCORE', 'LIMIT', 0, tonumber(ARGV[1]), 'WITHSCORES')
local moved, lost = 0, 0
for i = 1, #due, 2 do
  local id, score = due[i], due[i + 1]
  local raw = redis.call('HGET', KEYS[2], id)
  redis.call('ZREM', KEYS[1], id)
  if raw then
    redis.call('HDEL', KEYS[2], id)
    local fields = cjson.decode(raw)
    fields[#fields + 1] = 'due_ms'
    fields[#fields + 1] = score
    local entry = redis.call('XADD', KEYS[3], '*', unpack(fields))
    redis.call('HSET', KEYS[4], id, 'r:' .. entry)
    moved = moved + 1
  else
    redis.call('HDEL', KEYS[4], id)
    lost = lost + 1
  end
end
if lost > 0 then redis.call('HINCRBY', KEYS[5], 'lost', lost) end
local nxt = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {moved, lost, tonumber(nxt[2] or -1), now}
