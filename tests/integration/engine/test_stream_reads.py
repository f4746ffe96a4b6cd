"""The blocking reader pairs a read's fields in one pass (wire/streams.py): the same
entries, fields and streams as redis-py's own parse, deleted entries included."""

from __future__ import annotations

from typing import Any

from tgworkers.engine.wire.connection import connect_for_blocking
from tgworkers.engine.wire.keys import GROUP


async def test_the_blocking_readers_reply_is_redis_pys_own(redis, redis_url):
    streams = ["{tgw:test.a:0}:ready", "{tgw:test.a:1}:ready"]
    for n, key in enumerate(streams):
        await redis.xgroup_create(key, GROUP, id="0", mkstream=True)
        for i in range(3 + n):
            await redis.xadd(key, {"id": f"j{n}-{i}", "name": "test.a", "payload": "{}"})
    await redis.xadd(streams[0], {"only": "one"})
    blocking = connect_for_blocking(redis_url, block_ms=100)
    try:
        got: Any = await blocking.xreadgroup(GROUP, "me", dict.fromkeys(streams, ">"), count=10)
        assert got == [(s.encode(), await redis.xrange(s)) for s in streams]
        assert got[0][1][-1][1] == {b"only": b"one"}
        deleted = got[0][1][1][0]
        await redis.xdel(streams[0], deleted)  # deleted while pending: its fields are gone
        history: Any = await blocking.xreadgroup(GROUP, "me", {streams[0]: "0"}, count=10)
        plain = await redis.xreadgroup(GROUP, "me", {streams[0]: "0"}, count=10)
        assert [(s, [(e, f or {}) for e, f in rows]) for s, rows in plain] == history
        assert (deleted, {}) in history[0][1]
        assert await blocking.xreadgroup(GROUP, "me", dict.fromkeys(streams, ">"), block=1) == []
    finally:
        await blocking.aclose()
