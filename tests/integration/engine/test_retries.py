from __future__ import annotations

import itertools

import pytest
from tests.support.engine_state import idle, queue_state, runs
from tests.support.wait import wait_until

from tgworkers.engine.layout import Layout
from tgworkers.engine.ops.dlq import DeadLetters


async def _ran(redis, n):
    return await redis.llen("test:runs") >= n


@pytest.mark.promise(2)
@pytest.mark.promise(4)
async def test_failed_attempts_retry_with_the_same_job_id_until_success(
    redis, client, settings, registry, worker_factory
):
    async with worker_factory(settings, registry, "test.work"):
        res = await client.enqueue("test.work", {"n": 1, "fail_times": 3})
        await wait_until(lambda: _ran(redis, 4), timeout_s=10, what="4 attempts")
        await wait_until(lambda: idle(redis), timeout_s=5, what="idle")
    got = await runs(redis)
    assert [r.attempt for r in got] == [1, 2, 3, 4]
    assert {r.job_id for r in got} == {res.id}
    assert (await queue_state(redis))["dlq"] == 0


@pytest.mark.promise(4)
async def test_attempts_are_bounded_then_dead_lettered_with_every_error(
    redis, client, settings, registry, worker_factory, redis_url
):
    from tests.conftest import make_settings

    settings = make_settings(redis_url, MAX_ATTEMPTS_DEFAULT=3)
    async with worker_factory(settings, registry, "test.work"):
        res = await client.enqueue("test.work", {"n": 1, "fail_times": 99})
        await wait_until(lambda: _dlq(redis), timeout_s=10, what="dead-lettered")
    assert len(await runs(redis)) == 3
    job = await DeadLetters(redis, registry, Layout(settings)).show("test.work", res.id)
    assert job.attempts == 3
    assert job.reason.startswith("attempts exhausted (3/3)")
    assert [e["attempt"] for e in job.errors] == [1, 2, 3]
    assert all("planned failure" in e["message"] for e in job.errors)


@pytest.mark.promise(4)
async def test_backoff_grows_with_attempts_and_stays_under_the_cap(
    redis, client, redis_url, registry, worker_factory
):
    from tests.conftest import make_settings

    settings = make_settings(redis_url, BACKOFF_DEFAULT_MS=100, BACKOFF_MAX_MS=150)
    async with worker_factory(settings, registry, "test.work"):
        await client.enqueue("test.work", {"n": 1, "fail_times": 3})
        await wait_until(lambda: _ran(redis, 4), timeout_s=10, what="4 attempts")
    got = await runs(redis)
    gaps = [b.start_ms - a.end_ms for a, b in itertools.pairwise(got)]
    assert all(gap <= 150 + 150 for gap in gaps), gaps  # cap + scheduling slack


@pytest.mark.promise(4)
async def test_permanent_error_dead_letters_at_once_with_status_and_body(
    redis, client, settings, registry, worker_factory
):
    async with worker_factory(settings, registry, "test.work"):
        res = await client.enqueue("test.work", {"n": 1, "mode": "permanent"})
        await wait_until(lambda: _dlq(redis), timeout_s=5, what="dead-lettered")
    assert len(await runs(redis)) == 1
    job = await DeadLetters(redis, registry, Layout(settings)).show("test.work", res.id)
    assert job.reason == "bad thing"
    assert job.errors[0]["status"] == 404
    assert job.errors[0]["body"] == '{"code":"bet_not_found"}'


@pytest.mark.promise(4)
async def test_not_due_reschedules_without_spending_an_attempt(
    redis, client, settings, registry, worker_factory
):
    async with worker_factory(settings, registry, "test.work"):
        await client.enqueue("test.work", {"n": 1, "mode": "not_due"})
        await wait_until(lambda: _ran(redis, 2), timeout_s=5, what="second run")
        await wait_until(lambda: idle(redis), timeout_s=5, what="idle")
    first, second = await runs(redis)
    assert (first.attempt, second.attempt) == (1, 1)
    assert second.start_ms - first.start_ms >= 250  # retryAt = first run + 300 ms


@pytest.mark.promise(4)
async def test_retry_after_longer_than_backoff_is_honoured(
    redis, client, settings, registry, worker_factory
):
    async with worker_factory(settings, registry, "test.work"):
        await client.enqueue("test.work", {"n": 1, "fail_times": 1, "mode": "retry_after"})
        await wait_until(lambda: _ran(redis, 2), timeout_s=5, what="retry")
    first, second = await runs(redis)
    assert second.start_ms - first.end_ms >= 190  # after_ms = 200 > backoff cap 100


@pytest.mark.promise(4)
async def test_handler_timeout_counts_as_a_failed_attempt(
    redis, client, settings, registry, worker_factory, redis_url
):
    from tests.conftest import make_settings

    settings = make_settings(redis_url, MAX_ATTEMPTS_DEFAULT=2)
    async with worker_factory(settings, registry, "test.work"):
        res = await client.enqueue("test.slow", {"n": 1, "sleep_ms": 2000})
        await wait_until(lambda: _dlq(redis), timeout_s=10, what="dead-lettered")
    job = await DeadLetters(redis, registry, Layout(settings)).show("test.work", res.id)
    assert [e["kind"] for e in job.errors] == ["timeout", "timeout"]


async def _dlq(redis):
    return (await queue_state(redis))["dlq"] >= 1
