from __future__ import annotations

import msgspec
import pytest

from tests.support.jobs import RUNS_KEY, RunRecord
from tests.support.wait import wait_until

runs_decoder = msgspec.json.Decoder(RunRecord)


async def runs(redis) -> list[RunRecord]:
    return [runs_decoder.decode(x) for x in await redis.lrange(RUNS_KEY, 0, -1)]


@pytest.mark.promise(1)
async def test_enqueued_jobs_all_run_once_and_leave_nothing_behind(redis, client, settings, registry, worker_factory):
    results = await client.enqueue_many_simple if False else None  # noqa: F841
    from tgworkers.engine.client import EnqueueRequest

    res = await client.enqueue_many([EnqueueRequest(name="test.work", payload={"n": i}) for i in range(50)])
    assert all(r.created for r in res)
    async with worker_factory(settings, registry, "test.work"):
        await wait_until(lambda: redis.llen(RUNS_KEY), timeout_s=10, what="runs") 
        await wait_until(lambda: _count(redis, 50), timeout_s=10, what="50 runs")
        await wait_until(lambda: _empty(redis), timeout_s=5, what="queue empty")
    got = await runs(redis)
    assert sorted(r.n for r in got) == list(range(50))


async def _count(redis, n):
    return await redis.llen(RUNS_KEY) >= n


async def _empty(redis):
    return await redis.xlen("{tgw:test.work:0}:ready") == 0 and await redis.hlen("{tgw:test.work:0}:jobs") == 0
