#!lua flags=allow-oom
-- settle_done: acknowledge and forget finished jobs this consumer still owns.
--
-- KEYS[1] ready stream  KEYS[2] jobs hash  KEYS[3] done zset  KEYS[4] stats hash
-- KEYS[5] steps hash    KEYS[6..] exclusivity locks of the batch
-- ARGV[1] group  ARGV[2] consumer  ARGV[3] dedupe ttl ms
-- ARGV[4] the jobs as one JSON array:
--         [[entry id, job id, dedupe 1/0, lock index, fencing token], ...]
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
-- One XPENDING for the whole batch (this consumer's entries, up to ARGV[5]) and one
-- HDEL per hash, instead of one of each per job: Redis CPU per job is the cost that
-- caps a shard. Should the reply be cut at ARGV[5], the rest are checked one by one.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local jobs = cjson.decode(ARGV[4])
local bound = tonumber(ARGV[5])
local held = {}
local page = redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', bound, ARGV[2])
for _, e in ipairs(page) do held[e[1]] = e[4] end
local function count_of(entry)
  local n = held[entry]
  if n == nil and #page >= bound then
    local p = redis.call('XPENDING', KEYS[1], ARGV[1], entry, entry, 1)
    if p[1] and p[1][2] == ARGV[2] then n = p[1][4] end
  end
  return n
end
local refused, owned, ids, done = {}, {}, {}, {}
for _, job in ipairs(jobs) do
  local entry, id, dedupe, lock, token = job[1], job[2], job[3], job[4], job[5]
  if count_of(entry) == token then
    owned[#owned + 1] = entry
    if id ~= '' then
      ids[#ids + 1] = id
      if dedupe == 1 then
        done[#done + 1] = now
        done[#done + 1] = id
      end
    end
    if lock > 0 and redis.call('GET', KEYS[lock]) == id then redis.call('DEL', KEYS[lock]) end
  else
    refused[#refused + 1] = entry
  end
end
if #owned > 0 then
  redis.call('XACK', KEYS[1], ARGV[1], unpack(owned))
  redis.call('XDEL', KEYS[1], unpack(owned))
  redis.call('HINCRBY', KEYS[4], 'processed', #owned)
end
if #ids > 0 then
  redis.call('HDEL', KEYS[2], unpack(ids))
  redis.call('HDEL', KEYS[5], unpack(ids))
end
if #done > 0 then redis.call('ZADD', KEYS[3], unpack(done)) end
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', '(' .. (now - tonumber(ARGV[3])))
return refused
