#!lua flags=allow-oom
-- settle_done: acknowledge and forget finished jobs this consumer still owns.
--
-- KEYS[1] ready stream  KEYS[2] jobs hash  KEYS[3] done zset  KEYS[4] stats hash
-- KEYS[5] steps hash    KEYS[6..] exclusivity locks of the batch
-- ARGV[1] group  ARGV[2] consumer  ARGV[3] dedupe ttl ms
-- ARGV[4] the jobs as one JSON array:
--         [[entry id, job id, dedupe 1/0, lock index, fencing token], ...]
-- returns  the entry ids refused because another consumer owns them now
--
-- The ownership check fences zombies: a worker that lost its lease (XPENDING
-- shows another owner or a later delivery) can never ack a job someone else is running.
-- Fencing: an entry is ours only while XPENDING names this consumer AND the
-- delivery count it shows equals the token read when we claimed it (1 for a
-- read, n for the n-th delivery). Any reclaim, our own sweep's included, bumps
-- the count, so an older delivery of the same entry can change nothing.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local refused, owned = {}, {}
for _, job in ipairs(cjson.decode(ARGV[4])) do
  local entry, id, dedupe, lock, token = job[1], job[2], job[3], job[4], job[5]
  local p = redis.call('XPENDING', KEYS[1], ARGV[1], entry, entry, 1)
  if p[1] and p[1][2] == ARGV[2] and p[1][4] == token then
    owned[#owned + 1] = entry
    if id ~= '' then
      redis.call('HDEL', KEYS[2], id)
      redis.call('HDEL', KEYS[5], id)
      if dedupe == 1 then redis.call('ZADD', KEYS[3], now, id) end
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
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', '(' .. (now - tonumber(ARGV[3])))
return refused
