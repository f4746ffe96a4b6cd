"""Entries deleted behind the engine's back (XDEL / XTRIM) while pending leave the PEL
within VT + 2 s, are counted as lost, and the worker keeps consuming (promise 1;
pitfalls 1.4 and 1.7).
"""

from __future__ import annotations

import time

import pytest
from redis.asyncio import Redis
from tests.chaos.conftest import VT_MS, Fleet, events, pending_entries, pk, runs, stats
from tests.support.processes import WorkerProcess
from tests.support.wait import wait_until

from tgworkers.engine.client import Client, EnqueueRequest

pytestmark = [pytest.mark.chaos]


@pytest.mark.promise(1)
async def test_entries_deleted_while_pending_leave_the_pel_counted_as_lost(
    r: Redis, chaos_client: Client, fleet: Fleet
) -> None:
    a = await fleet.start_ready("test.work", CONCURRENCY_TEST_WORK="4")
    reqs = [
        EnqueueRequest(name="test.work", payload={"n": i, "sleep_ms": 20_000}) for i in range(4)
    ]
    await chaos_client.enqueue_many(reqs)
    await wait_until(lambda: _pending(r, 4), timeout_s=5, what="A holds 4 entries")
    b = await fleet.start_ready("test.work")

    entries = [row["message_id"] for row in await pending_entries(r, pk())]
    assert await r.xdel(pk().ready, *entries[:2]) == 2
    assert await r.xtrim(pk().ready, maxlen=0) == 2
    a.kill()
    killed = time.monotonic()

    await wait_until(
        lambda: _pending(r, 0, exact=True), timeout_s=VT_MS / 1000 + 2.5, what="PEL empty"
    )
    assert time.monotonic() - killed <= VT_MS / 1000 + 2
    await wait_until(lambda: _lost(b) >= 4, timeout_s=2, what="B counted 4 lost entries")
    assert _lost(b) == 4
    assert (await stats(r, pk())).get("lost") == 4

    fresh = [EnqueueRequest(name="test.work", payload={"n": 100 + i}) for i in range(20)]
    ids = {j.id for j in await chaos_client.enqueue_many(fresh)}
    await wait_until(lambda: _ran(r, ids), timeout_s=5, what="B keeps consuming")
    assert {x.pid for x in await runs(r)} == {b.pid}
    assert b.alive()


def _lost(proc: WorkerProcess) -> int:
    return sum(int(e["count"]) for e in events(proc, "job.entries_lost"))


async def _pending(r: Redis, n: int, *, exact: bool = False) -> bool:
    got = len(await pending_entries(r, pk()))
    return got == n if exact else got >= n


async def _ran(r: Redis, ids: set[str]) -> bool:
    return {x.job_id for x in await runs(r)} >= ids
