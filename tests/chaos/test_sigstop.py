"""A worker frozen (SIGSTOP) past the visibility timeout, then resumed: it never
takes its job back, its late settle is fenced, the job ends once (promises 1, 3).
"""

from __future__ import annotations

import signal

import pytest
from redis.asyncio import Redis
from tests.chaos.conftest import Fleet, events, pending_by_consumer, pk, runs, stats
from tests.support.wait import wait_until

from tgworkers.engine.client import Client

pytestmark = [pytest.mark.chaos]


@pytest.mark.promise(1)
@pytest.mark.promise(3)
async def test_resumed_zombie_worker_does_not_take_its_job_back_and_its_settle_is_refused(
    r: Redis, chaos_client: Client, fleet: Fleet
) -> None:
    a = await fleet.start_ready("test.work")
    job = await chaos_client.enqueue("test.work", {"n": 1, "sleep_ms": 4000})
    await wait_until(lambda: _owner(r, fleet.consumer(a)), timeout_s=5, what="A holds the job")
    a.signal(signal.SIGSTOP)
    b = await fleet.start_ready("test.work")
    await wait_until(lambda: _owner(r, fleet.consumer(b)), timeout_s=8, what="B reclaimed it")

    a.signal(signal.SIGCONT)
    await wait_until(
        lambda: events(a, "job.lease_lost") or events(a, "job.settle_refused"),
        timeout_s=6, what="A told it lost the job",
    )  # fmt: skip
    assert await _owner(r, fleet.consumer(b)), "A took the job back from B"

    await wait_until(lambda: _processed(r, 1), timeout_s=8, what="job done")
    await wait_until(lambda: _no_pending(r), timeout_s=5, what="PEL empty")
    assert (await stats(r, pk())).get("processed") == 1
    assert not await r.exists(pk().dlq)
    assert await r.hlen(pk().jobs) == 0
    assert [x.job_id for x in await runs(r) if x.pid == b.pid] == [job.id]
    assert not events(b, "job.settle_refused"), b.log()
    assert a.alive() and b.alive()


async def _owner(r: Redis, consumer: str) -> bool:
    return (await pending_by_consumer(r, pk())).get(consumer, 0) == 1


async def _processed(r: Redis, n: int) -> bool:
    return (await stats(r, pk())).get("processed", 0) >= n


async def _no_pending(r: Redis) -> bool:
    return not await pending_by_consumer(r, pk())
