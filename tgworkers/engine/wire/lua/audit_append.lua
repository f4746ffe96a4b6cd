#!lua flags=allow-oom
-- audit_append: add one entry to the capped audit stream, even at `maxmemory`.
--
-- KEYS[1] audit stream
-- ARGV[1] approximate max length, then field, value pairs
-- returns  the new entry id
--
-- allow-oom: the changes an operator makes at `maxmemory` (dropping dead letters,
-- draining) are the ones that free memory; their audit entry must not be the
-- write Redis refuses, or the change would stand without its record.
return redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', unpack(ARGV, 2))
