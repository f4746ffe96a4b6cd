"""One schedule paused, resumed and run now; its next ticks (issue 26), on an injected clock."""

from __future__ import annotations

import itertools

import pytest
from tests.conftest import make_settings
from tests.integration.engine.test_scheduler import T0, Clock, scheduler, tick_jobs
from tests.support.jobs import TEST_TICK

from tgworkers.engine.client import Client
from tgworkers.engine.ops.schedule_controls import ScheduleControls, ScheduleNotFoundError
from tgworkers.engine.schedule.scheduler import build_schedules, schedules_document


def controls(redis, registry, redis_url) -> ScheduleControls:
    settings = make_settings(redis_url, CRON_TEST_TICK="10")
    return ScheduleControls(redis, registry, settings, Client(redis, registry, settings))


async def test_a_paused_schedule_skips_its_ticks_and_resumed_fires_the_next_one_only(
    redis, registry, redis_url
):
    clock = Clock(T0 - 1)
    s = scheduler(redis, registry, redis_url, clock, CRON_TEST_TICK="10")
    ctl = controls(redis, registry, redis_url)
    await s.tick_once()  # first sight
    state = await ctl.pause("test.tick", by="admin:ops")
    assert (state.paused, state.by) == (True, "admin:ops")
    for tick in (T0, T0 + 10_000):
        clock.ms = tick
        await s.tick_once()
    assert await tick_jobs(redis) == []
    ledger = (await s.read_ledger())["test.tick"]
    assert (ledger.last_at, ledger.last_outcome) == (T0 + 10_000, "skipped: schedule paused")
    await ctl.resume("test.tick")
    clock.ms = T0 + 25_000  # the tick at +20 s is due: fired, none of the paused ones
    await s.tick_once()
    assert await tick_jobs(redis) == [f"cron:test.tick:{T0 + 20_000}".encode()]


async def test_run_now_enqueues_the_job_at_once_even_while_paused(redis, registry, redis_url):
    ctl = controls(redis, registry, redis_url)
    await ctl.pause("test.tick", by="admin:ops")
    state = await ctl.run_now("test.tick", by="admin:ops")
    assert state.created and state.paused
    assert state.job_id is not None and state.job_id.startswith("cron:test.tick:now:")
    assert await tick_jobs(redis) == [state.job_id.encode()]
    with pytest.raises(ScheduleNotFoundError, match=r"no schedule 'nope'; known: test\.tick"):
        await ctl.pause("nope", by="admin:ops")


async def test_the_schedules_document_shows_paused_and_the_next_five_ticks(
    redis, registry, redis_url
):
    settings = make_settings(redis_url, CRON_TEST_TICK="10")
    client = Client(redis, registry, settings)
    await controls(redis, registry, redis_url).pause("test.tick", by="cli:ops@host")
    doc = await schedules_document(
        redis, client, build_schedules([TEST_TICK], settings), settings.queue_prefix
    )
    (item,) = doc.schedules
    assert (item.paused, item.paused_by) == (True, "cli:ops@host")
    ticks = item.next_ticks
    assert len(ticks) == 5 and ticks[0] == item.next_at
    assert [b - a for a, b in itertools.pairwise(ticks)] == [10_000] * 4
