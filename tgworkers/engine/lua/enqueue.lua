-- enqueue: add jobs to one queue partition unless their id is already live or
-- finished within the dedupe window (promise 5).
--
-- KEYS[1] ready stream   KEYS[2] delayed zset   KEYS[3] delayed jobs hash
-- KEYS[4] jobs hash      KEYS[5] done zset      KEYS[6] dead-letter stream
-- ARGV[1] dedupe ttl ms  ARGV[2] wake channel   ARGV[3] job count
-- then per job: id, due ms (0 = now), the fields as a JSON array of strings
-- returns  one integer per job: 1 created, 0 already existed
--
-- A state record whose entry vanished (deleted behind the engine's back) is stale
-- and does not block a new enqueue. "Now" is Redis's clock. Fields travel as one
-- JSON argument per job: far cheaper for the client to send than one per field.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[1])

local function live(id)
  local state = redis.call('HGET', KEYS[4], id)
  if not state then return false end
  local kind, ref = string.sub(state, 1, 1), string.sub(state, 3)
  if kind == 'r' then return #redis.call('XRANGE', KEYS[1], ref, ref) > 0 end
  if kind == 'x' then return #redis.call('XRANGE', KEYS[6], ref, ref) > 0 end
  return redis.call('ZSCORE', KEYS[2], id) ~= false
end

local out, i, woke = {}, 4, false
for j = 1, tonumber(ARGV[3]) do
  local id, due, json = ARGV[i], tonumber(ARGV[i + 1]), ARGV[i + 2]
  i = i + 3
  local fin = redis.call('ZSCORE', KEYS[5], id)
  if live(id) or (fin and tonumber(fin) > now - ttl) then
    out[j] = 0
  else
    if due > now then
      redis.call('ZADD', KEYS[2], due, id)
      redis.call('HSET', KEYS[3], id, json)
      redis.call('HSET', KEYS[4], id, 'd')
      woke = woke or redis.call('ZRANGE', KEYS[2], 0, 0)[1] == id
    else
      local entry = redis.call('XADD', KEYS[1], '*', unpack(cjson.decode(json)))
      redis.call('HSET', KEYS[4], id, 'r:' .. entry)
    end
    out[j] = 1
  end
end
if woke then redis.call('PUBLISH', ARGV[2], '1') end
return out
