"""SIGTERM with handlers longer than the grace: exit 0 in time, and the unfinished
jobs are handed back so another worker starts them long before VT (promise 10).
"""

from __future__ import annotations

import signal
import time

import anyio
import pytest
from redis.asyncio import Redis
from tests.chaos.conftest import Fleet, events, now_ms, pending_by_consumer, pk, queue_idle, runs
from tests.support.processes import WorkerProcess
from tests.support.wait import wait_until

from tgworkers.engine.client import Client

pytestmark = [pytest.mark.chaos]

VT_MS = 20_000
GRACE_S = 1


@pytest.mark.promise(10)
async def test_sigterm_exits_zero_within_grace_and_hands_back_unfinished_jobs(
    r: Redis, chaos_client: Client, fleet: Fleet
) -> None:
    env = {"VISIBILITY_TIMEOUT_MS": str(VT_MS), "SHUTDOWN_GRACE_S": str(GRACE_S)}
    a = await fleet.start_ready("test.work", **env)
    quick = await chaos_client.enqueue("test.work", {"n": 0, "sleep_ms": 300})
    # long enough to be still running when A is told to stop, however long B takes to start
    # on a loaded machine (a 4 s job once finished on A before the SIGTERM at load 12)
    slow = [await chaos_client.enqueue("test.work", {"n": i, "sleep_ms": 8000}) for i in (1, 2, 3)]
    await wait_until(lambda: _holds(r, fleet.consumer(a), 4), timeout_s=5, what="A holds 4 jobs")
    b = await fleet.start_ready("test.work", **env)

    term_ms = now_ms()
    a.signal(signal.SIGTERM)
    code, took_s = await _exit_code(a, timeout_s=GRACE_S + 2)
    assert code == 0, a.log()
    assert took_s <= GRACE_S + 2
    assert events(a, "worker.stopped")

    await wait_until(lambda: _ran(r, 4), timeout_s=20, what="all 4 jobs ran")
    got = await runs(r)
    by_id = {x.job_id: x for x in got}
    assert by_id[quick.id].pid == a.pid, "the quick job finished within the grace on A"
    for job in slow:
        run = by_id[job.id]
        assert run.pid == b.pid
        assert run.start_ms - term_ms < 4000, "handed-back job not started well before VT"
    assert len(got) == 4
    await wait_until(lambda: queue_idle(r, pk()), timeout_s=5, what="queue idle")


async def _holds(r: Redis, consumer: str, n: int) -> bool:
    return (await pending_by_consumer(r, pk())).get(consumer, 0) >= n


async def _ran(r: Redis, n: int) -> bool:
    return await r.llen("test:runs") >= n


async def _exit_code(proc: WorkerProcess, *, timeout_s: float) -> tuple[int | None, float]:
    started = time.monotonic()
    with anyio.move_on_after(timeout_s + 1):
        while proc.proc.poll() is None:
            await anyio.sleep(0.02)
    return proc.proc.poll(), time.monotonic() - started
