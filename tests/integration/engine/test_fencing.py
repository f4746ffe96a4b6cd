"""Per-delivery fencing inside one worker (promise 3): its own sweep reclaiming an entry
it still runs never starts a second run beside the first, and a delivery taken over
while it waited in the local queue never runs at all."""

from __future__ import annotations

import pytest
from tests.support.engine_state import idle, pk, runs
from tests.support.jobs import OVERLAPS_KEY
from tests.support.wait import wait_until

from tgworkers.engine.broker import Delivery
from tgworkers.engine.executor import SettleKind
from tgworkers.engine.keys import GROUP


@pytest.mark.promise(3)
async def test_own_sweep_reclaiming_a_running_entry_supersedes_it_never_runs_it_twice_at_once(
    redis, client, settings, registry, worker_factory
):
    async with worker_factory(settings, registry, "test.work") as worker:
        job = await client.enqueue("test.work", {"n": 1, "sleep_ms": 1500, "mode": "track"})
        rt = worker.runtime("test.work")
        await wait_until(lambda: rt.running, timeout_s=5, what="the job running")
        (entry,) = [d.entry_id for d in rt.running]
        # as after an event-loop stall: the entry looks idle past VT, still ours
        await redis.xclaim(pk().ready, GROUP, worker.consumer, 0, [entry], idle=10_000_000,
                           justid=True)  # fmt: skip
        assert await rt.recovery.reclaim_once() == 1
        assert rt.counters["superseded"] == 1
        await wait_until(lambda: idle(redis), timeout_s=10, what="settled")
    assert await redis.lrange(OVERLAPS_KEY, 0, -1) == []
    (run,) = [x for x in await runs(redis) if x.job_id == job.id]  # the older run never ended
    assert run.deliveries == 2
    assert int(await redis.hget(pk().stats, "processed")) == 1


@pytest.mark.promise(3)
async def test_a_delivery_lost_while_queued_locally_never_runs(
    redis, client, settings, registry, worker_factory
):
    async with worker_factory(settings, registry, "test.work") as worker:
        rt = worker.runtime("test.work")
        await client.enqueue("test.work", {"n": 1})
        await wait_until(lambda: idle(redis), timeout_s=5, what="first job done")
        d = Delivery(pk(), b"1-1", {b"id": b"x", b"name": b"test.work", b"payload": b"{}"})
        d.decode()
        d.job_type = rt.job_types["test.work"]
        d.lost = True  # taken over (lease renewal said so) before a consumer picked it up
        settlement = await rt.executor.run(d)
    assert settlement.kind is SettleKind.DROP
    assert "x" not in [x.job_id for x in await runs(redis)]
