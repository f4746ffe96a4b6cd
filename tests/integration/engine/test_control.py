from __future__ import annotations

import time

import pytest
from tests.support.engine_state import idle, queue_state
from tests.support.wait import wait_until

from tgworkers.engine.client import EnqueueRequest
from tgworkers.engine.layout import Layout
from tgworkers.engine.ops.control import Control


async def _count(redis) -> int:
    return await redis.llen("test:runs")


@pytest.mark.promise(9)
async def test_pause_stops_handing_out_jobs_within_a_second_and_enqueue_still_works(
    redis, client, settings, registry, worker_factory
):
    control = Control(redis, registry, Layout(settings))
    async with worker_factory(settings, registry, "test.work"):
        await client.enqueue_many(
            [EnqueueRequest(name="test.work", payload={"n": i, "sleep_ms": 20}) for i in range(400)]
        )
        await wait_until(lambda: _count(redis), timeout_s=5, what="started")
        await control.set_paused("test.work", paused=True)
        paused_at = time.monotonic()
        # within 1 s the run count stops growing (in-flight ones finish)
        await wait_until(lambda: _stable(redis), timeout_s=1.5, what="no new starts")
        assert time.monotonic() - paused_at < 1.5
        frozen = await _count(redis)
        assert (await client.enqueue("test.work", {"n": 999}, delay_s=0.1)).created
        await wait_until(
            lambda: _promoted(redis), timeout_s=3, what="delayed job promoted while paused"
        )
        assert await _count(redis) == frozen
        await control.set_paused("test.work", paused=False)
        await wait_until(lambda: idle(redis), timeout_s=15, what="all done after resume")
    assert await _count(redis) == 401


_last: dict[str, int] = {}


async def _stable(redis) -> bool:
    n = await _count(redis)
    prev = _last.get("n")
    _last["n"] = n
    if prev == n:
        groups = await redis.xinfo_groups("{tgw:test.work:0}:ready")
        return all(int(g["pending"]) == 0 for g in groups)
    return False


async def _promoted(redis) -> bool:
    return (await queue_state(redis))["delayed"] == 0


@pytest.mark.promise(9)
async def test_drain_removes_ready_and_delayed_jobs_but_in_flight_ones_finish(
    redis, client, settings, registry, worker_factory
):
    control = Control(redis, registry, Layout(settings))
    async with worker_factory(settings, registry, "test.work") as worker:
        worker.runtime("test.work").set_concurrency(1)
        await client.enqueue("test.work", {"n": 0, "sleep_ms": 500})
        await wait_until(lambda: _inflight(redis), timeout_s=5, what="first in flight")
        await client.enqueue_many(
            [EnqueueRequest(name="test.work", payload={"n": i}) for i in range(1, 11)]
        )
        await client.enqueue("test.work", {"n": 99}, delay_s=60)
        result = await control.drain("test.work", delayed=True)
        assert (result.removed_ready, result.removed_delayed) == (10, 1)
        await wait_until(lambda: idle(redis), timeout_s=5, what="idle")
    assert await _count(redis) == 1
    assert (await queue_state(redis))["jobs"] == 0


async def _inflight(redis) -> bool:
    groups = await redis.xinfo_groups("{tgw:test.work:0}:ready")
    return any(int(g["pending"]) for g in groups)


async def test_a_lowered_concurrency_holds_for_consumers_asleep_when_it_dropped(
    redis, client, settings, registry, worker_factory
):
    """Consumers waiting for work when the limit drops leave as they wake, none runs a job.

    Before, each sleeping consumer ran the delivery it woke for: four jobs at once under a
    limit of one (the hot-reload test saw it about one run in ten).
    """
    async with worker_factory(settings, registry, "test.work") as worker:
        rt = worker.runtime("test.work")
        await wait_until(lambda: rt.running_consumers >= 4, what="consumers asleep, no work")
        rt.set_concurrency(1)
        await client.enqueue_many(
            [EnqueueRequest(name="test.work", payload={"n": i, "sleep_ms": 150}) for i in range(4)]
        )
        most = 0

        def all_done_sampling_runs() -> bool:
            nonlocal most
            most = max(most, len(rt.running))
            return rt.counters.done == 4

        await wait_until(all_done_sampling_runs, timeout_s=15, interval_s=0.005, what="4 done")
        assert most == 1, f"{most} jobs ran at once under a concurrency of 1"
        assert rt.running_consumers == 1
