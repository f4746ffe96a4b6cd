"""A producer in another language: plain Redis commands, no tgworkers code."""

from __future__ import annotations

import hashlib
import json
import time

import pytest
from tests.support.engine_state import runs
from tests.support.wait import wait_until


def partition(partition_key: str, n: int) -> int:
    # docs/wire-format.md: sha256, first 4 bytes big-endian, mod N
    return int.from_bytes(hashlib.sha256(partition_key.encode()).digest()[:4], "big") % n


@pytest.mark.promise(1)
async def test_raw_xadd_and_raw_delayed_add_both_run(redis, settings, registry, worker_factory):
    now = int(time.time() * 1000)
    ready_key = "{tgw:test.work:0}:ready"
    await redis.execute_command(
        "XADD", ready_key, "*", "id", "node-1", "name", "test.work",
        "payload", json.dumps({"n": 1}), "enqueued_ms", now, "origin", "node",
    )  # fmt: skip
    fields = [
        "id",
        "node-2",
        "name",
        "test.work",
        "payload",
        json.dumps({"n": 2}),
        "enqueued_ms",
        str(now),
    ]
    pipe = redis.pipeline(transaction=True)
    pipe.zadd("{tgw:test.work:0}:delayed", {"node-2": now + 300})
    pipe.hset("{tgw:test.work:0}:delayed:jobs", "node-2", json.dumps(fields))
    pipe.hset("{tgw:test.work:0}:jobs", "node-2", "d")
    await pipe.execute()
    async with worker_factory(settings, registry, "test.work"):
        await wait_until(lambda: _n(redis, 2), timeout_s=5, what="both ran")
    got = {r.job_id: r for r in await runs(redis)}
    assert set(got) == {"node-1", "node-2"}
    assert got["node-2"].start_ms >= now + 300


@pytest.mark.promise(12)
async def test_raw_producer_partition_formula_matches_the_engine(
    redis, redis_url, registry, worker_factory
):
    from tests.conftest import make_settings

    settings = make_settings(redis_url, PARTITIONS_TEST_EXCLUSIVE=2)
    for key in ("escrow-a", "escrow-b", "escrow-c"):
        p = partition(key, 2)
        await redis.xadd(
            f"{{tgw:test.exclusive:{p}}}:ready",
            {
                "id": f"job-{key}",
                "name": "test.exclusive",
                "payload": json.dumps({"key": key}),
                "key": key,
            },
        )
    async with worker_factory(settings, registry, "test.exclusive"):
        await wait_until(lambda: _n(redis, 3), timeout_s=5, what="3 ran")
    from tgworkers.engine.wire.keys import partition_of

    assert all(partition_of(k, 2) == partition(k, 2) for k in ("escrow-a", "escrow-b", "escrow-c"))


async def _n(redis, n):
    return await redis.llen("test:runs") >= n


@pytest.mark.promise(5)
async def test_raw_producer_can_enqueue_uniquely_with_the_shipped_script(redis):
    from pathlib import Path

    from tgworkers.engine.wire import lua

    text = (Path(lua.__file__).parent / "enqueue.lua").read_text()
    sha = await redis.script_load(text)
    tag = "{tgw:test.work:0}"
    keys = [
        f"{tag}:ready",
        f"{tag}:delayed",
        f"{tag}:delayed:jobs",
        f"{tag}:jobs",
        f"{tag}:done",
        f"{tag}:dlq",
    ]
    fields = json.dumps(["id", "node-9", "name", "test.work", "payload", '{"n": 9}'])
    first = await redis.evalsha(sha, 6, *keys, 86_400_000, f"{tag}:wake", 1, "node-9", 0, fields)
    again = await redis.evalsha(sha, 6, *keys, 86_400_000, f"{tag}:wake", 1, "node-9", 0, fields)
    assert (first, again) == ([1], [0])
    assert await redis.xlen(f"{tag}:ready") == 1
