"""Shared rate limits: the GCRA script on a real server, and a limited queue's jobs."""

from __future__ import annotations

import itertools
import time

import msgspec
from tests.conftest import make_settings, running_worker
from tests.support.jobs import RUNS_KEY, RunRecord
from tests.support.wait import wait_until

from tgworkers.engine.client import Client
from tgworkers.engine.live import Live
from tgworkers.engine.ops.rates import RateLimiter, read_limits


async def test_permits_are_booked_one_interval_apart_and_refused_past_the_longest_wait(
    redis, settings
):
    # each permit's slot is when its caller asked plus the wait it was given: on a loaded
    # machine the calls themselves take time, so the waits shrink but the slots do not move
    limiter = RateLimiter(redis, Live(settings))
    slots = []
    for _ in range(5):
        asked = time.monotonic() * 1000
        permit = await limiter.take("peer", "playhub", 10.0, max_wait_ms=1000)
        assert permit.booked, permit
        slots.append(asked + permit.wait_ms)
    gaps = [b - a for a, b in itertools.pairwise(slots)]
    assert all(50 <= g <= 150 for g in gaps), gaps  # 100 ms apart, less the calls' jitter
    refused = await limiter.take("peer", "playhub", 10.0, max_wait_ms=0)
    assert not refused.booked and refused.wait_ms > 0  # the next slot is ahead: no permit
    asked = time.monotonic() * 1000
    after = await limiter.take("peer", "playhub", 10.0, max_wait_ms=2000)
    assert after.booked
    # the refusal took nothing: the next permit is one interval after the last booked one
    assert 50 <= asked + after.wait_ms - slots[-1] <= 150


async def test_the_script_survives_script_flush_and_keeps_its_counters(redis, settings):
    limiter = RateLimiter(redis, Live(settings))
    assert (await limiter.take("queue", "test.work", 1000.0, max_wait_ms=0)).booked
    await redis.script_flush()
    assert (await limiter.take("queue", "test.work", 1000.0, max_wait_ms=50)).booked
    s = make_settings(settings.redis_url.reveal(), RATE_QUEUE_TEST_WORK_PER_S="1000")
    [state] = await read_limits(redis, s, {"TEST_WORK": "test.work"})
    assert (state.scope, state.name, state.per_s) == ("queue", "test.work", 1000.0)
    assert state.allowed + state.waited == 2


async def test_a_limited_queue_starts_jobs_at_its_rate_across_two_workers_without_spending_attempts(
    redis, redis_url, registry
):
    settings = make_settings(redis_url, RATE_QUEUE_TEST_WORK_PER_S="5")
    client = Client(redis, registry, settings)
    for n in range(20):
        await client.enqueue("test.work", {"n": n})
    async with (
        running_worker(settings, registry, "test.work", consumer="w1") as w1,
        running_worker(settings, registry, "test.work", consumer="w2"),
    ):
        await wait_until(lambda: redis.llen(RUNS_KEY), timeout_s=1, what="a first run")
        done = await wait_until(
            lambda: _full(redis, 20), timeout_s=30, what="20 runs at 5 a second"
        )
        doc = await _stats(w1)
    runs = [msgspec.json.decode(r, type=RunRecord) for r in done]
    starts = sorted(r.start_ms for r in runs)
    spacing = (starts[-1] - starts[0]) / (len(starts) - 1)
    assert 180 <= spacing <= 220, starts  # 5 a second: one start every 200 ms
    assert {r.attempt for r in runs} == {1}  # waiting for a permit spends no attempt
    [limit] = doc
    assert limit.waited > 0 and limit.refused > 0  # slept for some, sent others back to wait
    assert limit.allowed + limit.waited == 20


async def _full(redis, n: int) -> list[bytes] | None:
    runs: list[bytes] = await redis.lrange(RUNS_KEY, 0, -1)
    return runs if len(runs) >= n else None


async def _stats(worker):
    queue_of = {p.env_name: p.queue for p in worker.registry.processors.values()}
    return await read_limits(worker.redis, worker.settings, queue_of)
