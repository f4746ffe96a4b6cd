"""Per-key exclusivity across worker processes: a SIGKILL of one, and one job id written
twice with plain XADDs (promise 6)."""

from __future__ import annotations

import itertools
from collections import defaultdict

import pytest
from redis.asyncio import Redis
from tests.chaos.conftest import Fleet, pk, queue_idle, runs
from tests.support.jobs import OVERLAPS_KEY, RunRecord
from tests.support.wait import wait_until

from tgworkers.engine.client import Client, EnqueueRequest
from tgworkers.engine.wire.keys import partition_of

pytestmark = [pytest.mark.chaos]

KEYS = ("k0", "k1", "k2", "k3")
JOBS = 40


@pytest.mark.promise(6)
async def test_jobs_of_one_key_never_overlap_across_workers_and_a_sigkill(
    r: Redis, chaos_client: Client, fleet: Fleet
) -> None:
    workers = [await fleet.start_ready("test.exclusive") for _ in range(3)]
    reqs = [
        EnqueueRequest(
            name="test.exclusive",
            payload={"n": i, "key": KEYS[i % 4], "sleep_ms": 100 + i % 3 * 50},
        )
        for i in range(JOBS)
    ]
    jobs = await chaos_client.enqueue_many(reqs)
    assert all(j.created for j in jobs)

    await wait_until(lambda: _ran_at_least(r, 8), timeout_s=10, what="8 runs before the kill")
    victim = workers[0]
    victim.kill()

    await wait_until(lambda: _all_ran(r, {j.id for j in jobs}), timeout_s=25, what="all 40 ran")
    await wait_until(lambda: _idle(r), timeout_s=5, what="both partitions idle")
    got = await runs(r)
    assert _overlaps(got) == []
    assert {x.pid for x in got} - {victim.pid}, "no survivor ran anything"
    assert all(w.alive() for w in workers[1:])


@pytest.mark.promise(6)
async def test_two_plain_xadds_of_one_exclusive_job_never_run_at_once(
    r: Redis, fleet: Fleet
) -> None:
    """A producer that retried its plain XADD (wire-format.md allows it) wrote one job
    twice: two entries, one id, one key. The lock held the job id, so both ran at once."""
    for _ in range(2):
        await fleet.start_ready("test.exclusive")
    job_id, key = "escrow.expire:e_1:release:h_9", "e_1"
    fields = {
        "id": job_id, "name": "test.exclusive", "key": key, "origin": "escrow",
        "payload": '{"n": 1, "key": "e_1", "sleep_ms": 1500, "mode": "track"}',
    }  # fmt: skip
    ready = pk("test.exclusive", partition_of(key, 2)).ready
    await r.xadd(ready, fields)
    await r.xadd(ready, fields)

    async def both_ran() -> bool:
        return len([x for x in await runs(r) if x.job_id == job_id]) == 2

    await wait_until(both_ran, timeout_s=30, what="both entries ran")
    assert await r.lrange(OVERLAPS_KEY, 0, -1) == []
    assert _overlaps(await runs(r)) == []
    await wait_until(lambda: _idle(r), timeout_s=10, what="both partitions idle")
    assert all(w.alive() for w in fleet.procs)


def _overlaps(got: list[RunRecord]) -> list[tuple[RunRecord, RunRecord]]:
    by_key: dict[str | None, list[RunRecord]] = defaultdict(list)
    for x in got:
        by_key[x.key].append(x)
    bad = []
    for items in by_key.values():
        items.sort(key=lambda x: x.start_ms)
        bad += [(a, b) for a, b in itertools.pairwise(items) if b.start_ms < a.end_ms]
    return bad


async def _ran_at_least(r: Redis, n: int) -> bool:
    return await r.llen("test:runs") >= n


async def _all_ran(r: Redis, ids: set[str]) -> bool:
    return {x.job_id for x in await runs(r)} >= ids


async def _idle(r: Redis) -> bool:
    return all([await queue_idle(r, pk("test.exclusive", p)) for p in (0, 1)])
