#!lua flags=allow-oom
-- drain_ready: delete jobs not yet handed to any worker (and, when asked, the
-- delayed ones); in-flight jobs are untouched and finish.
--
-- KEYS[1] ready stream  KEYS[2] jobs hash  KEYS[3] delayed zset
-- KEYS[4] delayed jobs hash   KEYS[5] steps hash
-- ARGV[1] group  ARGV[2] also delayed (1/0)  ARGV[3] max jobs per call
-- returns  {ready removed, delayed removed, 1 when more remain}
--
-- "Not yet handed out" = entries after the group's last-delivered id. A drained
-- job's step record goes with it (a retried job waiting in the delayed set has one).
local last = '0-0'
if redis.call('EXISTS', KEYS[1]) == 1 then
  for _, g in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
    local name, delivered
    for k = 1, #g, 2 do
      if g[k] == 'name' then name = g[k + 1] end
      if g[k] == 'last-delivered-id' then delivered = g[k + 1] end
    end
    if name == ARGV[1] then last = delivered end
  end
end
local limit = tonumber(ARGV[3])
local entries = redis.call('XRANGE', KEYS[1], '(' .. last, '+', 'COUNT', limit)
for _, e in ipairs(entries) do
  redis.call('XDEL', KEYS[1], e[1])
  local f = e[2]
  for k = 1, #f, 2 do
    if f[k] == 'id' then
      redis.call('HDEL', KEYS[2], f[k + 1])
      redis.call('HDEL', KEYS[5], f[k + 1])
    end
  end
end
local delayed = {}
if ARGV[2] == '1' then
  delayed = redis.call('ZRANGE', KEYS[3], 0, limit - 1)
  for _, id in ipairs(delayed) do
    redis.call('ZREM', KEYS[3], id)
    redis.call('HDEL', KEYS[4], id)
    redis.call('HDEL', KEYS[2], id)
    redis.call('HDEL', KEYS[5], id)
  end
end
local more = (#entries == limit or #delayed == limit) and 1 or 0
return {#entries, #delayed, more}
