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
-- Check before write: every job of the batch is checked first; one whose fields are
-- not a JSON array of field names and values, whose fields' `id` is not the id
-- argument (the id this script dedupes on: a mismatch would run the job twice and
-- leave a stale record), or whose due time is not whole milliseconds from 0 to
-- MAX_DUE_MS (`inf`, `nan`, `-5`, `1e3` and `1.5` pass `tonumber`; `inf` never comes
-- due) fails the whole call with an error naming it, and nothing of the batch is written.
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

local MAX_DUE_MS = 253402300799999 -- 9999-12-31T23:59:59.999Z

-- why job j cannot be enqueued, or nil
local function problem(id, due, fields)
  local good = type(fields) == 'table' and #fields > 0 and #fields % 2 == 0
  for _, v in ipairs(good and fields or {}) do good = good and type(v) == 'string' end
  if not good then return 'fields are not a JSON array of names and values' end
  local named = false
  for f = 1, #fields, 2 do
    if fields[f] == 'id' then
      if fields[f + 1] ~= id then
        return 'the fields\' id ' .. string.format('%q', fields[f + 1]) .. ' is not the id argument'
      end
      named = true
    end
  end
  if not named then return 'the fields have no id' end
  if not string.match(due, '^%d+$') or #due > 15 or tonumber(due) > MAX_DUE_MS then
    return 'due ms ' .. string.format('%q', string.sub(due, 1, 40))
      .. ' is not whole milliseconds from 0 (now) to ' .. MAX_DUE_MS
  end
  return nil
end

local decoded = {}
for j = 1, tonumber(ARGV[3]) do
  local k = 4 + (j - 1) * 3
  local ok, fields = pcall(cjson.decode, ARGV[k + 2])
  local why = problem(ARGV[k], ARGV[k + 1], ok and fields or nil)
  if why then
    return redis.error_reply('ERR job ' .. j .. ' (id ' .. ARGV[k] .. '): ' .. why .. '; nothing was enqueued')
  end
  decoded[j] = fields
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
      local entry = redis.call('XADD', KEYS[1], '*', unpack(decoded[j]))
      redis.call('HSET', KEYS[4], id, 'r:' .. entry)
    end
    out[j] = 1
  end
end
if woke then redis.call('PUBLISH', ARGV[2], '1') end
return out
