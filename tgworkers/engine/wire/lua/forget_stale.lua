#!lua flags=allow-oom
-- forget_stale: drop job-state records whose job no longer exists anywhere (its
-- entry was deleted behind the engine's back), one HSCAN page per call, so the
-- jobs hash stays bounded by the live jobs (promise 11).
--
-- KEYS[1] ready stream  KEYS[2] jobs hash  KEYS[3] delayed zset  KEYS[4] dead-letter stream
-- KEYS[5] steps hash
-- ARGV[1] HSCAN cursor  ARGV[2] page size
-- returns  {next cursor, records removed}
--
-- A record is stale when what it points at is gone: `r:<entry>` with no such
-- stream entry, `d` with no delayed member, `x:<entry>` with no DLQ entry. Every
-- move of a job updates its record in the same script, so a live job never looks
-- stale here. A lost job's step record is dropped with its state record.
local page = redis.call('HSCAN', KEYS[2], ARGV[1], 'COUNT', ARGV[2])
local fields, removed = page[2], 0
for k = 1, #fields, 2 do
  local id, state = fields[k], fields[k + 1]
  local kind, ref = string.sub(state, 1, 1), string.sub(state, 3)
  local alive
  if kind == 'r' then
    alive = #redis.call('XRANGE', KEYS[1], ref, ref) > 0
  elseif kind == 'x' then
    alive = #redis.call('XRANGE', KEYS[4], ref, ref) > 0
  else
    alive = redis.call('ZSCORE', KEYS[3], id) ~= false
  end
  if not alive then
    redis.call('HDEL', KEYS[2], id)
    redis.call('HDEL', KEYS[5], id)
    removed = removed + 1
  end
end
return {page[1], removed}
