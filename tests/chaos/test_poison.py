"""Poison: a job whose handler kills its worker (`os._exit(1)`) every time is
dead-lettered after MAX_DELIVERIES, while a small supervisor restarts the crashed
workers; 200 normal jobs enqueued alongside all finish (promise 4).
"""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from redis.asyncio import Redis
from tests.chaos.conftest import Fleet, pk, queue_idle, runs
from tests.support.processes import WorkerProcess
from tests.support.wait import wait_until

from tgworkers.engine.client import Client, EnqueueRequest
from tgworkers.engine.wire.keys import Field

pytestmark = [pytest.mark.chaos]

MAX_DELIVERIES = 3
PROCESSORS = "test.poison,test.work"


class Supervisor:
    """Keeps `size` workers running: a crashed one is replaced at once (like systemd)."""

    def __init__(self, fleet: Fleet, size: int) -> None:
        self.fleet = fleet
        self.size = size
        self.crashes = 0
        self.procs: list[WorkerProcess] = []

    def spawn(self) -> None:
        self.procs.append(self.fleet.start(PROCESSORS, MAX_DELIVERIES=str(MAX_DELIVERIES)))

    async def run(self) -> None:
        while True:
            for proc in list(self.procs):
                if not proc.alive():
                    self.procs.remove(proc)
                    self.crashes += 1
            while len(self.procs) < self.size:
                self.spawn()
            await anyio.sleep(0.05)


@pytest.mark.promise(4)
async def test_poison_job_is_dead_lettered_after_max_deliveries_and_others_finish(
    r: Redis, chaos_client: Client, fleet: Fleet
) -> None:
    sup = Supervisor(fleet, size=2)
    async with anyio.create_task_group() as tg:
        tg.start_soon(sup.run)
        poison = await chaos_client.enqueue("test.poison", {"n": -1, "mode": "crash"})
        normal: set[str] = set()
        for wave in range(10):  # alongside: normal jobs keep arriving while it crashes workers
            reqs = [
                EnqueueRequest(name=q, payload={"n": wave * 20 + i, "sleep_ms": 20})
                for i in range(10)
                for q in ("test.poison", "test.work")
            ]
            normal |= {j.id for j in await chaos_client.enqueue_many(reqs)}
            await anyio.sleep(0.5)  # spread the arrivals over the crashes
        # three crashes, each a replacement process start (seconds each at load 12) and a reclaim
        await wait_until(lambda: _dead(r), timeout_s=60, what="poison dead-lettered")
        await wait_until(lambda: _ran(r, normal), timeout_s=30, what="200 normal jobs ran")
        await wait_until(lambda: _idle(r), timeout_s=10, what="queues idle")
        tg.cancel_scope.cancel()

    dead: Any = await r.xrange(pk("test.poison").dlq)
    assert len(dead) == 1, dead
    fields = {k.decode(): v.decode() for k, v in dead[0][1].items()}
    assert fields[Field.ID] == poison.id
    assert fields[Field.REASON].startswith("poison")
    assert sup.crashes == MAX_DELIVERIES, f"crashes: {sup.crashes}"
    assert poison.id not in {x.job_id for x in await runs(r)}
    assert not await r.exists(pk("test.work").dlq)


async def _dead(r: Redis) -> bool:
    return bool(await r.exists(pk("test.poison").dlq))


async def _ran(r: Redis, ids: set[str]) -> bool:
    return {x.job_id for x in await runs(r)} >= ids


async def _idle(r: Redis) -> bool:
    return await queue_idle(r, pk("test.work")) and await r.xlen(pk("test.poison").ready) == 0
