#!lua flags=allow-oom
-- settle_done: acknowledge and forget finished jobs this consumer still owns.
--
-- KEYS[1] ready stream  KEYS[2] jobs hash  KEYS[3] done zset  KEYS[4] stats hash
-- KEYS[5] steps hash    KEYS[6..] exclusivity locks of the batch
-- ARGV[1] group  ARGV[2] consumer  ARGV[3] dedupe ttl ms
-- ARGV[4] the jobs as one JSON array of columns (a table per job cost more than
--         the rest of the script): [[entry ids], [job ids], [positions to dedupe],
--         [[position, lock index]...], [[position, fencing token]...]]: positions are
--         1-based in the batch; a job not listed is not deduped, holds no lock and has
--         token 1 (a first delivery), so the common batch sends no number per job
-- ARGV[5] how many entries this consumer may hold in the stream (a bound, for COUNT)
-- returns  the entry ids refused because another consumer owns them now
--
-- The ownership check fences zombies: a worker that lost its lease (XPENDING
-- shows another owner or a later delivery) can never ack a job someone else is running.
-- Fencing: an entry is ours only while XPENDING names this consumer AND the
-- delivery count it shows equals the token read when we claimed it (1 for a
-- read, n for the n-th delivery). Any reclaim, our own sweep's included, bumps
-- the count, so an older delivery of the same entry can change nothing.
--
-- A lock is released only while it names this delivery (`<entry id>/<token>`, acquire_keys).
--
-- One XPENDING for the whole batch (this consumer's entries in the batch's span of
-- milliseconds, up to ARGV[5]) and one
-- HDEL per hash, instead of one of each per job: Redis CPU per job is the cost that
-- caps a shard. Should the reply be cut at ARGV[5], the rest are checked one by one.
--
-- Acked entries leave the stream in this call (promise 11), mostly by XTRIM MINID:
-- XDEL scans the entry's stream node for every id (~5 us each, more than the rest of
-- this script), a trim is one pass. Every entry below the group's first pending one
-- has been delivered (XREADGROUP hands out entries in id order) and is pending no
-- more, so it is settled: trimming up to there removes ours and nothing unsettled.
-- Ours above that line (finished before an older job still running) go by XDEL.
--
-- Cost: the read+settle loop of `bench.peers.redis_cost` (XREADGROUP 100 included, which
-- raw read+ack pays too: 22.1k) is 42.0k Redis instructions per job, 49.2k before the
-- per-entry loops lost their C calls and the columns their number per job. Of the rest,
-- the fence's XPENDING page is ~10k (the command, its reply, the reply as Lua tables).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local cols = cjson.decode(ARGV[4])
local entries, jids, dedupes, locks, tokens = cols[1], cols[2], {}, {}, {}
for _, n in ipairs(cols[3]) do dedupes[n] = true end
for _, p in ipairs(cols[4]) do locks[p[1]] = p[2] end
for _, p in ipairs(cols[5]) do tokens[p[1]] = p[2] end
local bound = tonumber(ARGV[5])
-- the page spans the batch's milliseconds only: from the consumer's whole PEL it also
-- held the next read's entries, about one more per settled job, each turned into a Lua
-- table (~1 us), more than finding the span costs
if #entries == 0 then return {} end
-- The span's ends are found comparing whole ids as text (no function call per entry: a
-- C function call costs ~600 instructions here, so the per-entry loops of this script
-- use no `match`, `ipairs`, `math.max` or `tonumber`): the right ends whenever the ids'
-- milliseconds have one length (13 digits, 2001 to 2286); otherwise an entry outside
-- the span is missing from the page and is checked on its own (`count_of`).
local lo, hi = entries[1], entries[1]
for i = 2, #entries do
  local entry = entries[i]
  if entry < lo then lo = entry elseif entry > hi then hi = entry end
end
lo, hi = string.match(lo, '^%d+'), string.match(hi, '^%d+')
local held, pos = {}, {}
local page = redis.call('XPENDING', KEYS[1], ARGV[1], lo, hi, bound, ARGV[2])
for i = 1, #page do
  local e = page[i]
  local id = e[1]
  held[id] = e[4]
  pos[id] = i
end
local function count_of(entry)
  local n = held[entry]
  if n == nil then -- outside the span, or beyond a cut page
    local p = redis.call('XPENDING', KEYS[1], ARGV[1], entry, entry, 1)
    if p[1] and p[1][2] == ARGV[2] then n = p[1][4] end
  end
  return n
end

local function parse(id)
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  return tonumber(ms), tonumber(seq)
end
local function below(a, bms, bseq) -- stream id a < stream id bms-bseq
  local ams, aseq = parse(a)
  return ams < bms or (ams == bms and aseq < bseq)
end

-- after the XACK: trim what lies below the first pending entry, XDEL ours above it.
-- The page is in id order, so its entries below that line are a prefix of it,
-- found by bisection; only entries beyond a cut page are compared one by one.
local function remove(acked)
  local first = redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1)[1]
  local lms, lseq = math.huge, 0
  if first then lms, lseq = parse(first[1]) end
  local lo, hi = 0, #page -- page[1..lo] lie below the line
  while lo < hi do
    local mid = math.floor((lo + hi + 1) / 2)
    if below(page[mid][1], lms, lseq) then lo = mid else hi = mid - 1 end
  end
  local top, topms, topseq, rest = 0, -1, -1, {}
  for i = 1, #acked do
    local entry = acked[i]
    local at = pos[entry]
    if at ~= nil then
      if at > lo then
        rest[#rest + 1] = entry
      elseif at > top then
        top = at
      end
    elseif below(entry, lms, lseq) then
      local ms, seq = parse(entry)
      if ms > topms or (ms == topms and seq > topseq) then topms, topseq = ms, seq end
    else
      rest[#rest + 1] = entry
    end
  end
  if topms < 0 and top > 0 then topms, topseq = parse(page[top][1]) end
  if topms >= 0 then -- every entry up to the highest of ours below the line goes
    redis.call('XTRIM', KEYS[1], 'MINID', string.format('%d-%d', topms, topseq + 1))
  end
  if #rest > 0 then redis.call('XDEL', KEYS[1], unpack(rest)) end
end

local refused, owned, ids, done = {}, {}, {}, {}
local n_owned, n_ids = 0, 0
for i = 1, #entries do
  local entry, id, lock, token = entries[i], jids[i], locks[i], tokens[i] or 1
  local count = held[entry]
  if count == nil then count = count_of(entry) end
  if count == token then
    n_owned = n_owned + 1
    owned[n_owned] = entry
    if id ~= '' then
      n_ids = n_ids + 1
      ids[n_ids] = id
      if dedupes[i] then
        done[#done + 1] = now
        done[#done + 1] = id
      end
    end
    if lock and redis.call('GET', KEYS[lock]) == entry .. '/' .. token then
      redis.call('DEL', KEYS[lock])
    end
  else
    refused[#refused + 1] = entry
  end
end
if #owned > 0 then
  redis.call('XACK', KEYS[1], ARGV[1], unpack(owned))
  remove(owned)
  redis.call('HINCRBY', KEYS[4], 'processed', #owned)
end
if #ids > 0 then
  redis.call('HDEL', KEYS[2], unpack(ids))
  -- step records are rare (multi-step jobs): no hash, no arguments to build per job
  if redis.call('EXISTS', KEYS[5]) == 1 then redis.call('HDEL', KEYS[5], unpack(ids)) end
end
if #done > 0 then redis.call('ZADD', KEYS[3], unpack(done)) end
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', '(' .. (now - tonumber(ARGV[3])))
return refused
