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
--
-- Cost (Redis instructions per job, `bench.peers.redis_cost`, 10,000 no-op jobs): the
-- dedupe reads and the state records go as one HMGET, ZMSCORE and HSET per batch, and
-- the common batch is checked with no function call per field: 73.4k -> 55.2k. What
-- is left is the XADD itself, cjson and the ARGV (XADD alone, pipelined: ~12k).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[1])

local function live(id, state) -- state: the job's state record, false if none
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

local n = tonumber(ARGV[3])
local ids, decoded = {}, {}

-- The common batch, checked in one pass with no function call per field: a comparison
-- with '' is false for any string and raises for anything else (number, boolean, null,
-- table, nil: an undecodable job), which ends the pass. True only if `problem` finds
-- nothing in any job; any doubt falls back to `problem`, job by job, for the error.
-- (A C function call costs ~600 instructions here; `type` on each field of a batch of
-- 500 was a tenth of the script.)
local match, decode = string.match, cjson.decode
local function all_good()
  for j = 1, n do
    local k = 4 + (j - 1) * 3
    local id, due, fields = ARGV[k], ARGV[k + 1], decode(ARGV[k + 2])
    local count = #fields
    if count == 0 or count % 2 == 1 then return false end
    local named = false
    for f = 1, count, 2 do
      local name, value = fields[f], fields[f + 1]
      if name < '' or value < '' then return false end
      if name == 'id' then
        if value ~= id then return false end
        named = true
      end
    end
    if not named then return false end
    if due ~= '0' and (not match(due, '^%d+$') or #due > 15 or tonumber(due) > MAX_DUE_MS) then
      return false
    end
    ids[j], decoded[j] = id, fields
  end
  return true
end

local fast, good = pcall(all_good)
if not (fast and good) then
  for j = 1, n do
    local k = 4 + (j - 1) * 3
    local ok, fields = pcall(decode, ARGV[k + 2])
    local why = problem(ARGV[k], ARGV[k + 1], ok and fields or nil)
    if why then
      return redis.error_reply('ERR job ' .. j .. ' (id ' .. ARGV[k] .. '): ' .. why .. '; nothing was enqueued')
    end
    ids[j], decoded[j] = ARGV[k], fields
  end
end

-- Redis commands in slices: unpack() takes at most a few thousand values
local SLICE = 1000
local function gather(cmd, key, list) -- one reply value per element of list
  local out = {}
  for a = 1, #list, SLICE do
    local part = redis.call(cmd, key, unpack(list, a, math.min(a + SLICE - 1, #list)))
    for _, v in ipairs(part) do out[#out + 1] = v end
  end
  return out
end
local function put(cmd, key, list) -- list holds pairs: never cut one in two
  for a = 1, #list, SLICE * 2 do
    redis.call(cmd, key, unpack(list, a, math.min(a + SLICE * 2 - 1, #list)))
  end
end

-- The dedupe reads of the whole batch: one HMGET and one ZMSCORE, not one call of
-- each per job (a command called from Lua costs ~2k instructions before it does
-- anything); a job earlier in this batch is live too (`made`).
local states, fins = gather('HMGET', KEYS[4], ids), gather('ZMSCORE', KEYS[5], ids)
local out, made, late, woke = {}, {}, {}, false
local records, delayed, delayed_jobs = {}, {}, {}
for j = 1, n do
  local id, k = ids[j], 4 + (j - 1) * 3
  local due, fin = tonumber(ARGV[k + 1]), fins[j]
  if made[id] or live(id, states[j]) or (fin and tonumber(fin) > now - ttl) then
    out[j] = 0
  else
    made[id] = true
    records[#records + 1] = id
    if due > now then
      delayed[#delayed + 1] = due
      delayed[#delayed + 1] = id
      delayed_jobs[#delayed_jobs + 1] = id
      delayed_jobs[#delayed_jobs + 1] = ARGV[k + 2]
      records[#records + 1] = 'd'
      late[id] = true
    else
      records[#records + 1] = 'r:' .. redis.call('XADD', KEYS[1], '*', unpack(decoded[j]))
    end
    out[j] = 1
  end
end
if #records > 0 then put('HSET', KEYS[4], records) end
if #delayed > 0 then
  put('ZADD', KEYS[2], delayed)
  put('HSET', KEYS[3], delayed_jobs)
  -- a job of this batch is now the earliest: the promoter sleeps until a later one
  woke = late[redis.call('ZRANGE', KEYS[2], 0, 0)[1]] ~= nil
end
if woke then redis.call('PUBLISH', ARGV[2], '1') end
return out
