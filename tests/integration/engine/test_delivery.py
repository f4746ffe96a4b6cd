from __future__ import annotations

import pytest
from tests.conftest import make_settings, running_worker
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


async def test_a_busy_worker_reads_once_for_all_its_free_slots(redis, redis_url, client, registry):
    """A read that came back short must not leave the worker reading in split batches.

    The first read takes 30 of 100 slots; the next one must wait for those 30 to run
    and then ask for all 100 slots, not for the 70 left while they were queued: a
    70 + 30 split would go on for the whole backlog, two round trips per 100 jobs.
    """
    settings = make_settings(redis_url, CONCURRENCY_TGWORKERS_NOOP=100)
    noop = [EnqueueRequest(name="tgworkers.noop", payload={}) for _ in range(30)]
    async with running_worker(settings, registry, "tgworkers.noop"):
        await client.enqueue_many(noop)
        await wait_until(lambda: _processed(redis, 30), timeout_s=10, what="30 no-op jobs")
        await redis.config_resetstat()
        await client.enqueue_many([EnqueueRequest(name="tgworkers.noop", payload={})] * 2000)
        await wait_until(lambda: _processed(redis, 2030), timeout_s=30, what="2,030 no-op jobs")
        reads = int((await redis.info("commandstats"))["cmdstat_xreadgroup"]["calls"])
    assert reads <= 2000 / 100 + 5, f"{reads} reads for 2,000 jobs at 100 slots"


async def _processed(redis, n: int) -> bool:
    return int(await redis.hget("{tgw:tgworkers.noop:0}:stats", "processed") or 0) >= n
