"""Per-delivery fencing inside one worker (promise 3): its own sweep reclaiming an entry
it still runs never starts a second run beside the first, a delivery taken over
while it waited in the local queue never runs at all, and a lost run still in its
clean-up holds back new runs of its key here, but no other key (promise 6)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from tests.support.engine_state import idle, pk, runs
from tests.support.jobs import CLEANUPS_KEY, OVERLAPS_KEY
from tests.support.wait import wait_until

from tgworkers.engine.runtime.delivery import Delivery
from tgworkers.engine.runtime.processor import ProcessorRuntime
from tgworkers.engine.runtime.settlement import SettleKind
from tgworkers.engine.wire.keys import GROUP

STRAY_FIELDS = {b"id": b"x", b"name": b"test.work", b"payload": b"{}"}
"""A job `x` that no producer enqueued: any run of it is the fence failing."""


@asynccontextmanager
async def _runtime_after_one_job(
    redis: Any, client: Any, settings: Any, registry: Any, worker_factory: Any
) -> AsyncIterator[ProcessorRuntime]:
    """A `test.work` worker whose loops are up: it has read, run and settled one job."""
    async with worker_factory(settings, registry, "test.work") as worker:
        await client.enqueue("test.work", {"n": 1})
        await wait_until(lambda: idle(redis), timeout_s=5, what="first job done")
        yield worker.runtime("test.work")


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
        assert rt.counters.superseded == 1
        await wait_until(lambda: idle(redis), timeout_s=10, what="settled")
    assert await redis.lrange(OVERLAPS_KEY, 0, -1) == []
    (run,) = [x for x in await runs(redis) if x.job_id == job.id]  # the older run never ended
    assert run.deliveries == 2
    assert int(await redis.hget(pk().stats, "processed")) == 1


@pytest.mark.promise(3)
async def test_a_delivery_lost_while_queued_locally_never_runs(
    redis, client, settings, registry, worker_factory
):
    async with _runtime_after_one_job(redis, client, settings, registry, worker_factory) as rt:
        d = Delivery(pk(), b"1-1", STRAY_FIELDS)
        d.decode()
        rt.deliveries.taken([d])
        rt.deliveries.lose(d.held_as)  # a renewal's verdict before a consumer picked it up
        settlement = await rt.executor.run(d)
    assert settlement.kind is SettleKind.DROP
    assert "x" not in [x.job_id for x in await runs(redis)]


@pytest.mark.promise(3)
async def test_a_delivery_that_waited_out_its_lease_here_never_starts(
    redis, client, settings, registry, worker_factory
):
    # as after an event loop blocked past VT: the delivery waited in the local queue, its
    # renewals could not be sent, and a consumer takes it before the watchdog's next pass
    # (the fault-schedule checker's seeds 268 and 279: a run started after its job was done)
    async with _runtime_after_one_job(redis, client, settings, registry, worker_factory) as rt:
        d = Delivery(pk(), b"1-1", STRAY_FIELDS, leased_at=time.monotonic() - 3600)
        d.decode()
        rt.deliveries.taken([d])
        rt.active += 1  # as dispatch counts it
        await rt._consume_once(d)
        assert d.lost
        assert rt.counters.lease_expired == 1
    assert "x" not in [x.job_id for x in await runs(redis)]


@pytest.mark.promise(3)
async def test_a_read_batch_older_than_its_lease_budget_is_expired_as_it_is_handed_out(
    redis, client, settings, registry, worker_factory
):
    # the read loop asks the lease rules per delivery only when the batch's send time
    # says one may be stale (`Leases.all_fresh`): a read sent an hour ago (a stall) must
    # still find each delivery out of budget, never run it
    async with _runtime_after_one_job(redis, client, settings, registry, worker_factory) as rt:
        sent = time.monotonic() - 3600
        d = Delivery(pk(), b"1-1", STRAY_FIELDS, 1, sent)
        run, poison, locking = rt.deliveries.read([d], rt.options.max_deliveries)
        assert run == [d] and not poison
        await rt._hand_out(run, sent, locking=locking)
        assert d.lost  # expired as it was handed out, before any consumer took it
        await wait_until(lambda: rt.deliveries.get(d.held_as) is None, what="dropped")
    assert "x" not in [x.job_id for x in await runs(redis)]


@pytest.mark.promise(3)
@pytest.mark.promise(6)
async def test_a_lost_run_in_its_clean_up_holds_back_a_new_run_of_its_key_but_no_other_key(
    redis, client, settings, registry, worker_factory
):
    async with worker_factory(settings, registry, "test.exclusive") as worker:
        rt = worker.runtime("test.exclusive")
        slow = {"n": 1, "key": "k0", "sleep_ms": 10_000, "cleanup_ms": 4000, "mode": "track"}
        await client.enqueue("test.exclusive", slow)
        await wait_until(lambda: redis.get("test:sleeping:k0"), timeout_s=5, what="k0 running")
        (lost,) = rt.running
        rt.deliveries.lose(lost.held_as)  # a renewal's verdict: cancelled, now compensating
        assert lost.lock is not None
        await redis.delete(lost.lock)  # its lock expired unrenewed meanwhile
        same = await client.enqueue("test.exclusive", {"n": 2, "key": "k0", "mode": "track"})
        other = await client.enqueue("test.exclusive", {"n": 3, "key": "k1", "mode": "track"})

        async def ran(job_id: str) -> bool:
            return job_id in {x.job_id for x in await runs(redis)}

        await wait_until(lambda: ran(other.id), timeout_s=5, what="the other key's job ran")
        assert not await redis.llen(CLEANUPS_KEY), "the other key waited for the clean-up"
        assert not await ran(same.id)
        await wait_until(lambda: ran(same.id), timeout_s=15, what="k0's new job ran after it")
        assert await redis.llen(CLEANUPS_KEY) == 1
        assert rt.counters.waited_unfinished >= 1
    assert await redis.lrange(OVERLAPS_KEY, 0, -1) == []


@pytest.mark.promise(3)
async def test_two_partitions_entries_with_one_id_are_two_deliveries_never_one(
    redis, settings, registry, worker_factory
):
    """Entry ids are per stream: two partitions can each add `1796611357578-0` in the same
    millisecond (seen in the Redis-pause chaos test). The runtime held its entries by id
    alone: one twin replaced the other, went unrenewed, and our sweep's reclaim of it
    superseded (cancelled) the other partition's job and ran the first one again."""
    async with worker_factory(settings, registry, "test.exclusive") as worker:
        rt = worker.runtime("test.exclusive")
        for p, key in ((0, "ka"), (1, "kb")):
            payload = f'{{"n": {p}, "key": "{key}", "sleep_ms": 4500, "mode": "track"}}'
            fields = {"id": f"twin-{p}", "name": "test.exclusive", "key": key, "payload": payload}
            await redis.xadd(pk("test.exclusive", p).ready, fields, id="5-0")

        async def both_ran() -> bool:
            return {"twin-0", "twin-1"} <= {x.job_id for x in await runs(redis)}

        await wait_until(both_ran, timeout_s=20, what="both twins ran")
        assert rt.counters.superseded == 0
    assert sorted((x.job_id, x.deliveries) for x in await runs(redis)) == [
        ("twin-0", 1),
        ("twin-1", 1),
    ]
    assert await redis.lrange(OVERLAPS_KEY, 0, -1) == []


@pytest.mark.promise(6)
async def test_a_twin_entry_waiting_for_its_key_does_not_hold_back_the_other_partitions_twin(
    redis, settings, registry, worker_factory
):
    """The same id collision in taking key locks: one twin refused (its key held) dropped
    the other partition's twin from the batch, which then sat tracked and never ran."""
    await redis.set(pk("test.exclusive", 0).lock("ka"), "another/1", px=60_000)
    async with worker_factory(settings, registry, "test.exclusive"):
        async with redis.pipeline(transaction=True) as tx:  # one read gets both twins
            for p, key in ((0, "ka"), (1, "kb")):
                payload = f'{{"n": {p}, "key": "{key}"}}'
                fields = {"id": f"twin-{p}", "name": "test.exclusive", "key": key}
                tx.xadd(pk("test.exclusive", p).ready, {**fields, "payload": payload}, id="5-0")
            await tx.execute()

        async def free_twin_ran() -> bool:
            return "twin-1" in {x.job_id for x in await runs(redis)}

        await wait_until(free_twin_ran, timeout_s=10, what="the twin whose key is free ran")
        assert await redis.zscore(pk("test.exclusive", 0).delayed, "twin-0") is not None
