"""Scheduler against a real Redis with an injected clock: misfires, clock jumps,
overlap and first sight, without waiting for real time to pass."""

from __future__ import annotations

import msgspec
import pytest
from tests.conftest import make_settings
from tests.support.engine_state import runs
from tests.support.jobs import TEST_TICK
from tests.support.wait import wait_until

from tgworkers.engine.client import Client
from tgworkers.engine.schedule.scheduler import Scheduler, build_schedules, schedules_document

T0 = 1_800_000_000_000  # a multiple of 10 s, so ticks of a 10-second schedule fall on it


class Clock:
    def __init__(self, ms: int) -> None:
        self.ms = ms

    def __call__(self) -> float:
        return self.ms / 1000


def scheduler(redis, registry, redis_url, clock, **env) -> Scheduler:
    settings = make_settings(redis_url, **env)
    client = Client(redis, registry, settings)
    return Scheduler(
        redis=redis,
        client=client,
        schedules=build_schedules([TEST_TICK], settings),
        prefix=settings.queue_prefix,
        clock=clock,
    )


async def tick_jobs(redis) -> list[bytes]:
    ids = await redis.hkeys("{tgw:test.tick:0}:jobs")
    return sorted(ids)


@pytest.mark.promise(8)
async def test_a_new_schedule_fires_at_its_next_tick_not_for_a_past_one(redis, registry, redis_url):
    clock = Clock(T0 + 4_000)
    s = scheduler(redis, registry, redis_url, clock, CRON_TEST_TICK="10")
    assert await s.tick_once() == pytest.approx(6.0, abs=0.01)
    assert await tick_jobs(redis) == []
    clock.ms = T0 + 10_000
    await s.tick_once()
    assert await tick_jobs(redis) == [f"cron:test.tick:{T0 + 10_000}".encode()]


@pytest.mark.promise(8)
async def test_the_same_tick_from_many_replicas_is_one_job(redis, registry, redis_url):
    clock = Clock(T0 - 1)
    replicas = [scheduler(redis, registry, redis_url, clock, CRON_TEST_TICK="10") for _ in range(3)]
    for r in replicas:
        await r.tick_once()
    clock.ms = T0 + 5
    for r in replicas:
        await r.tick_once()
    assert await tick_jobs(redis) == [f"cron:test.tick:{T0}".encode()]
    assert sum(r.counters["fired"] for r in replicas) == 1


@pytest.mark.promise(8)
async def test_after_downtime_one_missed_tick_fires_once_not_a_burst(redis, registry, redis_url):
    clock = Clock(T0 - 1)
    s = scheduler(redis, registry, redis_url, clock, CRON_TEST_TICK="10")
    await s.tick_once()
    clock.ms = T0 + 35_000  # down for 3.5 periods; the latest tick is 5 s old, within grace
    await scheduler(redis, registry, redis_url, clock, CRON_TEST_TICK="10").tick_once()
    assert await tick_jobs(redis) == [f"cron:test.tick:{T0 + 30_000}".encode()]


@pytest.mark.promise(8)
async def test_missed_ticks_older_than_the_grace_are_skipped_and_counted(
    redis, registry, redis_url
):
    from tests.support import jobs

    from tgworkers.engine import Processor, Schedule

    proc = Processor(name="test.tick", job_types=(jobs.TICK,),
                     schedules=(Schedule(job="test.tick", default="10", misfire_grace_ms=2_000),))  # fmt: skip
    settings = make_settings(redis_url)
    clock = Clock(T0 - 1)
    make = lambda: Scheduler(redis=redis, client=Client(redis, registry, settings),  # noqa: E731
                             schedules=build_schedules([proc], settings), prefix="tgw", clock=clock)  # fmt: skip
    await make().tick_once()
    clock.ms = T0 + 35_000  # the latest tick is 5 s old: older than the 2 s grace
    s = make()
    await s.tick_once()
    assert await tick_jobs(redis) == []
    assert s.counters["misfired"] >= 1


@pytest.mark.promise(8)
async def test_clock_jumping_back_never_fires_a_tick_twice(redis, registry, redis_url):
    clock = Clock(T0 - 1)
    s = scheduler(redis, registry, redis_url, clock, CRON_TEST_TICK="10")
    await s.tick_once()
    clock.ms = T0 + 20_001
    await s.tick_once()
    await redis.delete("{tgw:test.tick:0}:done", "{tgw:test.tick:0}:jobs")  # forget the jobs
    clock.ms = T0 + 10_001  # the host clock jumps back 10 s
    await s.tick_once()
    clock.ms = T0 + 20_002
    await s.tick_once()
    assert await tick_jobs(redis) == []
    assert s.counters["fired"] == 1


@pytest.mark.promise(8)
async def test_overlap_skip_does_not_pile_up_behind_a_long_run(redis, registry, redis_url):
    clock = Clock(T0 - 1)
    s = scheduler(redis, registry, redis_url, clock, CRON_TEST_TICK="10")
    await s.tick_once()
    for k in range(1, 4):  # three ticks while the first job is still queued (no worker)
        clock.ms = T0 + (k - 1) * 10_000 + 1
        await s.tick_once()
    assert len(await tick_jobs(redis)) == 1
    assert s.counters["skipped"] == 2
    doc = msgspec.to_builtins(await schedules_document(redis, s.client, s.schedules, "tgw"))
    (item,) = doc["schedules"]
    assert item["lastOutcome"].startswith("skipped")
    assert item["name"] == "test.tick"
    assert item["expression"] == "10"


@pytest.mark.promise(8)
async def test_real_time_schedule_runs_each_tick_once(redis, redis_url, registry, worker_factory):
    settings = make_settings(redis_url, CRON_TEST_TICK="1")
    async with worker_factory(settings, registry, "test.tick"):
        await wait_until(lambda: _n(redis, 3), timeout_s=6, what="3 ticks ran")
    got = await runs(redis)
    ids = [r.job_id for r in got]
    assert len(ids) == len(set(ids))
    ticks = sorted(int(i.rsplit(":", 1)[1]) for i in ids)
    assert all(t % 1000 == 0 for t in ticks)
    assert all(r.start_ms - int(r.job_id.rsplit(":", 1)[1]) < 500 for r in got)


async def _n(redis, n):
    return await redis.llen("test:runs") >= n
