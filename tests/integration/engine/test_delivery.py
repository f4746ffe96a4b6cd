from __future__ import annotations

import pytest
from tests.support.engine_state import idle, queue_state, runs
from tests.support.wait import wait_until

from tgworkers.engine.client import EnqueueRequest


@pytest.mark.promise(1)
async def test_every_enqueued_job_runs_and_the_queue_is_left_empty(
    redis, client, settings, registry, worker_factory
):
    reqs = [EnqueueRequest(name="test.work", payload={"n": i}) for i in range(200)]
    assert all(r.created for r in await client.enqueue_many(reqs))
    async with worker_factory(settings, registry, "test.work"):
        await wait_until(lambda: _ran(redis, 200), timeout_s=15, what="200 runs")
        await wait_until(lambda: idle(redis), timeout_s=5, what="queue idle")
    got = await runs(redis)
    assert sorted(r.n for r in got) == list(range(200))
    state = await queue_state(redis)
    assert state == {"ready": 0, "pending": 0, "delayed": 0, "delayed_jobs": 0, "jobs": 0, "dlq": 0}


@pytest.mark.promise(1)
async def test_delayed_job_runs_at_its_time_not_before(
    redis, client, settings, registry, worker_factory
):
    async with worker_factory(settings, registry, "test.work"):
        res = await client.enqueue("test.work", {"n": 1}, delay_s=0.5)
        assert res.created
        await wait_until(lambda: _ran(redis, 1), timeout_s=5, what="delayed run")
    (run,) = await runs(redis)
    assert run.start_ms >= res.run_at - 5  # Redis and host share a clock here


async def _ran(redis, n: int) -> bool:
    return await redis.llen("test:runs") >= n
