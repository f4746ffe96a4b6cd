-- promote_due: move delayed jobs whose due time has passed onto the ready stream.
--
-- KEYS[1] delayed zset   KEYS[2] delayed jobs hash   KEYS[3] ready stream
-- KEYS[4] jobs hash     KEYS[5] stats hash          KEYS[6] dead-letter stream
-- ARGV[1] max jobs to move in one call
-- returns  {moved, lost, next due ms or -1, redis now ms, dead-lettered}
--
-- Atomic: never lost, never doubled. "Now" is Redis's clock (TIME), not the
-- worker's. Each promoted entry carries due_ms so pickup latency is measurable.
--
-- Check before write: a record is decoded (pcall, so a bad one cannot abort the
-- script half-way, and Lua writes are not rolled back) before anything of it is
-- removed. A record that is not a JSON array of field names and values goes to
-- the dead-letter stream with its bytes and a reason naming the problem; the
-- jobs after it are promoted as usual.
local function decoded(raw)
  local ok, fields = pcall(cjson.decode, raw)
  if not ok then return nil, 'not JSON' end
  if type(fields) ~= 'table' or #fields == 0 or #fields % 2 ~= 0 then
    return nil, 'not an array of field names and values'
  end
  for _, v in ipairs(fields) do
    if type(v) ~= 'string' then return nil, 'a field name or value is not a string' end
  end
  return fields, nil
end

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local due = redis.call('ZRANGE', KEYS[1], '-inf', now, 'BYSCORE', 'LIMIT', 0, tonumber(ARGV[1]), 'WITHSCORES')
local moved, lost, dead = 0, 0, 0
for i = 1, #due, 2 do
  local id, score = due[i], due[i + 1]
  local raw = redis.call('HGET', KEYS[2], id)
  if raw then
    local fields, problem = decoded(raw)
    if fields then
      fields[#fields + 1] = 'due_ms'
      fields[#fields + 1] = score
      local entry = redis.call('XADD', KEYS[3], '*', unpack(fields))
      redis.call('HSET', KEYS[4], id, 'r:' .. entry)
      moved = moved + 1
    else
      local reason = 'malformed delayed record: ' .. problem
      local deadid = redis.call('XADD', KEYS[6], '*', 'id', id, 'raw', raw, 'reason', reason,
        'failed_ms', tostring(now))
      redis.call('HSET', KEYS[4], id, 'x:' .. deadid)
      redis.call('HINCRBY', KEYS[5], 'dead', 1)
      dead = dead + 1
    end
    redis.call('ZREM', KEYS[1], id)
    redis.call('HDEL', KEYS[2], id)
  else
    redis.call('ZREM', KEYS[1], id)
    redis.call('HDEL', KEYS[4], id)
    lost = lost + 1
  end
end
if lost > 0 then redis.call('HINCRBY', KEYS[5], 'lost', lost) end
local nxt = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {moved, lost, tonumber(nxt[2] or -1), now, dead}
