#!lua flags=allow-oom
-- remove_consumer: delete a consumer from the group only when it has no pending
-- entries, checked and deleted atomically (deleting one with pending entries
-- would make them unclaimable: silently lost jobs).
--
-- KEYS[1] ready stream
-- ARGV[1] group  ARGV[2] consumer
-- returns  1 removed, 0 kept (it still has pending entries)
local p = redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[2])
if #p > 0 then return 0 end
redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])
return 1
