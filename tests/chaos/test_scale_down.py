"""Scale-down: 6 workers, 4 SIGKILLed for good. Their pending jobs are reclaimed and
run, their consumers leave the group, and no consumer is removed while it still has
pending entries (promise 3, consumer hygiene; pitfalls 1.10).
"""

from __future__ import annotations

import pytest
from redis.asyncio import Redis
from tests.chaos.conftest import Fleet, pending_by_consumer, pk, queue_idle, runs
from tests.support.wait import wait_until

from tgworkers.engine.client import Client, EnqueueRequest
from tgworkers.engine.wire.keys import GROUP

pytestmark = [pytest.mark.chaos]

JOBS = 12


@pytest.mark.promise(3)
async def test_stopped_workers_jobs_are_reclaimed_and_their_consumers_removed_only_when_empty(
    r: Redis, chaos_client: Client, fleet: Fleet
) -> None:
    workers = [await fleet.start_ready("test.work", CONCURRENCY_TEST_WORK="2") for _ in range(6)]
    names = {fleet.consumer(w): w for w in workers}
    reqs = [
        EnqueueRequest(name="test.work", payload={"n": i, "sleep_ms": 1500}) for i in range(JOBS)
    ]
    jobs = await chaos_client.enqueue_many(reqs)
    await wait_until(lambda: _held(r, JOBS), timeout_s=5, what="every job held by a worker")
    held = await pending_by_consumer(r, pk())
    victims = sorted(held, key=lambda c: -held[c])[:4]
    assert sum(held[v] for v in victims) >= 4
    for v in victims:
        names[v].kill()

    seen: dict[str, int] = {}
    removed_with_pending: list[tuple[str, int]] = []

    async def gone() -> bool:
        now = await _consumers(r)
        for name, pending in seen.items():
            if name not in now and pending > 0:
                removed_with_pending.append((name, pending))
        seen.clear()
        seen.update(now)
        return not set(victims) & set(now)

    await wait_until(gone, timeout_s=20, what="dead consumers removed", interval_s=0.02)
    assert removed_with_pending == []
    await wait_until(lambda: _all_ran(r, {j.id for j in jobs}), timeout_s=10, what="all ran")
    await wait_until(lambda: queue_idle(r, pk()), timeout_s=5, what="queue idle")
    survivors = [w for n, w in names.items() if n not in victims]
    assert all(w.alive() for w in survivors)
    assert set(await _consumers(r)) == {fleet.consumer(w) for w in survivors}


async def _held(r: Redis, n: int) -> bool:
    return sum((await pending_by_consumer(r, pk())).values()) >= n


async def _consumers(r: Redis) -> dict[str, int]:
    rows = await r.xinfo_consumers(pk().ready, GROUP)
    return {row["name"].decode(): int(row["pending"]) for row in rows}


async def _all_ran(r: Redis, ids: set[str]) -> bool:
    return {x.job_id for x in await runs(r)} >= ids
