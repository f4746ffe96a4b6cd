"""SIGKILL mid-handler: the job runs again elsewhere within VT + 2 s; a long
handler on a healthy worker keeps its lease and is never started twice (promise 3).
"""

from __future__ import annotations

import pytest
from redis.asyncio import Redis
from tests.chaos.conftest import VT_MS, Fleet, events, now_ms, pending_by_consumer, pk, runs
from tests.support.wait import wait_until

from tgworkers.engine.client import Client

pytestmark = [pytest.mark.chaos]


@pytest.mark.promise(3)
async def test_killed_worker_job_runs_again_on_another_worker_within_visibility_timeout(
    r: Redis, chaos_client: Client, fleet: Fleet
) -> None:
    # both started first: a slow start of the survivor cannot outlast the job
    one, other = [await fleet.start_ready("test.work") for _ in range(2)]
    job = await chaos_client.enqueue("test.work", {"n": 1, "sleep_ms": 1500})

    async def someone_runs_it() -> bool:
        return await _owns(r, fleet.consumer(one)) or await _owns(r, fleet.consumer(other))

    await wait_until(someone_runs_it, timeout_s=5, what="a worker running the job")
    a, b = (one, other) if await _owns(r, fleet.consumer(one)) else (other, one)
    killed_ms = now_ms()
    a.kill()

    await wait_until(lambda: r.llen("test:runs"), timeout_s=VT_MS / 1000 + 4, what="rerun")
    (run,) = await runs(r)
    assert run.job_id == job.id
    assert run.pid == b.pid
    assert run.deliveries == 2
    assert run.start_ms - killed_ms <= VT_MS + 2000, "not running again within VT + 2 s"
    await wait_until(lambda: _settled(r), timeout_s=5, what="job settled")


@pytest.mark.promise(3)
async def test_handler_running_three_visibility_timeouts_is_never_started_twice(
    r: Redis, chaos_client: Client, fleet: Fleet
) -> None:
    workers = [await fleet.start_ready("test.work") for _ in range(2)]
    sleep_ms = 3 * VT_MS
    jobs = [
        await chaos_client.enqueue("test.work", {"n": i, "sleep_ms": sleep_ms}) for i in range(4)
    ]

    await wait_until(
        lambda: _llen_at_least(r, 4), timeout_s=sleep_ms / 1000 + 5, what="4 long runs done"
    )
    await wait_until(lambda: _settled(r), timeout_s=5, what="all settled")
    got = await runs(r)
    assert sorted(x.job_id for x in got) == sorted(j.id for j in jobs)
    assert all(x.deliveries == 1 for x in got), got
    assert all(x.end_ms - x.start_ms >= sleep_ms - 50 for x in got), got  # wall vs loop clock
    for w in workers:
        assert w.alive()
        assert not events(w, "job.reclaimed"), w.log()
        assert not events(w, "job.settle_refused"), w.log()


async def _owns(r: Redis, consumer: str) -> bool:
    return (await pending_by_consumer(r, pk())).get(consumer, 0) > 0


async def _llen_at_least(r: Redis, n: int) -> bool:
    return await r.llen("test:runs") >= n


async def _settled(r: Redis) -> bool:
    s = await r.hgetall(pk().stats)
    return int(s.get(b"processed", 0)) >= 1 and not await pending_by_consumer(r, pk())
