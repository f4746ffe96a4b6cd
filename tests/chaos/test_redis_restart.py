"""Redis restarted (AOF, `appendfsync always`) in the middle of 2,000 jobs: every
job ends done, workers stay up, scripts reload without surfacing errors (promise 1).

Two forms: an immediate restart (absorbed by the connection retries) and a restart
after 1.5 s down (the workers see the outage, back off, and carry on).
"""

from __future__ import annotations

import functools

import anyio
import pytest
from redis.asyncio import Redis
from tests.chaos.conftest import Fleet, events, pk, queue_idle, runs
from tests.support.processes import WorkerProcess
from tests.support.redis_server import RedisServer
from tests.support.wait import wait_until

from tgworkers.engine.client import Client, EnqueueRequest

pytestmark = [pytest.mark.chaos]

JOBS = 2000


@pytest.mark.promise(1)
@pytest.mark.parametrize("down_s", [0.0, 1.5], ids=["restart", "outage"])
async def test_redis_restart_mid_run_loses_nothing_and_workers_carry_on(
    r: Redis, aof_server: RedisServer, chaos_client: Client, fleet: Fleet, down_s: float
) -> None:
    workers = [await fleet.start_ready("test.work", CONCURRENCY_TEST_WORK="4") for _ in range(2)]
    reqs = [EnqueueRequest(name="test.work", payload={"n": i, "sleep_ms": 5}) for i in range(JOBS)]
    jobs = await chaos_client.enqueue_many(reqs)
    assert all(j.created for j in jobs)
    await wait_until(lambda: _ran(r, 300), timeout_s=10, what="300 runs before the restart")

    before = (await r.info("server"))["run_id"]
    aof_server.stop(kill=True)
    await anyio.sleep(down_s)  # the outage itself: a duration, not a wait for a condition
    aof_server.start()
    assert (await r.info("server"))["run_id"] != before
    assert await r.llen("test:runs") < JOBS, "the restart came too late to test anything"

    ids = {j.id for j in jobs}
    await wait_until(lambda: _all_ran(r, ids), timeout_s=30, what="all 2000 ran")
    await wait_until(lambda: queue_idle(r, pk()), timeout_s=10, what="queue idle")
    assert not await r.exists(pk().dlq)
    for w in workers:
        assert w.alive(), w.log()
        _assert_no_script_errors(w)
        if down_s:
            await wait_until(
                functools.partial(events, w, "redis.up"), what="outage ended in the log"
            )
            assert events(w, "redis.down")


def _assert_no_script_errors(w: WorkerProcess) -> None:
    text = w.log()
    assert "NOSCRIPT" not in text.upper(), text
    assert not events(w, "job.dead_lettered")
    # only the handler's own RPUSH may fail, with what an outage answers: no connection, a
    # timeout, or LOADING while the restarted server reads its AOF back
    outage = ("onnection", "Timeout", "BusyLoadingError")
    for e in events(w, "job.retry_scheduled"):
        assert any(word in str(e.get("error")) for word in outage), e


async def _ran(r: Redis, n: int) -> bool:
    return await r.llen("test:runs") >= n


async def _all_ran(r: Redis, ids: set[str]) -> bool:
    return {x.job_id for x in await runs(r)} >= ids
