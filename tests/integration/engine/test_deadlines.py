"""Deadlines: a job delivered at or after its `expires_ms` is dead-lettered `expired`, not run."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from tests.conftest import running_worker
from tests.support.engine_state import pk, runs
from tests.support.jobs import WORK
from tests.support.wait import wait_until

from tgworkers.engine.client import Client, EnqueueRequest, deadline_ms
from tgworkers.engine.layout import Layout
from tgworkers.engine.ops.dlq import DeadLetters
from tgworkers.engine.ops.job_actions import JobStateError
from tgworkers.engine.registry import JobType
from tgworkers.engine.wire.envelope import fields_from_json, from_fields
from tgworkers.errors import InputError
from tgworkers.producer import Producer


def now_ms() -> int:
    return int(time.time() * 1000)


async def test_a_job_past_its_deadline_is_dead_lettered_expired_and_never_runs(
    redis, registry, settings, client: Client
):
    late = await client.enqueue("test.work", {"n": 1}, expires_at_ms=now_ms() - 1)
    fine = await client.enqueue("test.work", {"n": 2}, expires_at_ms=now_ms() + 3_600_000)
    dlq = DeadLetters(redis, registry, Layout(settings))
    async with running_worker(settings, registry, "test.work"):
        dead = await wait_until(lambda: dlq.find("test.work", late.id), what="expired job dead")
        await wait_until(lambda: _ran(redis, 2), what="the job within its deadline run")
    assert dead.reason == "expired"
    assert [e["kind"] for e in dead.errors] == ["expired"]
    assert [r.n for r in await runs(redis)] == [2]  # the expired one's handler never ran
    assert await client.state("test.work", fine.id) is None  # done (auto id: not kept)


async def test_a_job_written_in_the_wire_format_with_a_past_deadline_expires(
    redis, registry, settings
):
    fields = {"id": "wire-1", "name": "test.work", "payload": '{"n": 3}',
              "expires_ms": str(now_ms() - 10)}  # fmt: skip
    await redis.xadd(pk().ready, fields)  # the plain XADD of docs/wire-format.md
    dlq = DeadLetters(redis, registry, Layout(settings))
    async with running_worker(settings, registry, "test.work"):
        dead = await wait_until(lambda: dlq.find("test.work", "wire-1"), what="expired")
    assert dead.reason == "expired"


async def test_the_producer_and_the_job_types_default_set_the_deadline(redis, redis_url, registry):
    at = datetime.now(UTC) + timedelta(minutes=5)
    async with Producer.from_url(redis_url, jobs=registry) as producer:
        job = await producer.enqueue("test.work", {"n": 1}, delay=60, expires_at=at)
    blob = await redis.hget(pk().delayed_jobs, job.id)
    env = from_fields(fields_from_json(blob))
    assert env.expires_ms == int(at.timestamp() * 1000)
    typed = JobType(name="t", payload=WORK.payload, handler=WORK.handler, expires_after_s=30)
    request = EnqueueRequest(name="t", payload={})
    assert deadline_ms(typed, request, 1_000, 0) == 31_000  # from enqueue for a ready job
    assert deadline_ms(typed, request, 1_000, 5_000) == 35_000  # from its due time
    with pytest.raises(InputError, match="expiresAt is not after runAt"):
        deadline_ms(WORK, EnqueueRequest(name="t", payload={}, expires_at_ms=10), 0, 10)


async def _ran(redis, n: int) -> bool:
    return any(r.n == n for r in await runs(redis))


async def test_an_expired_job_requeued_runs_its_deadline_dropped(redis, registry, settings, client):
    from tgworkers.engine.ops.job_actions import JobActions
    from tgworkers.engine.wire.scripts import Scripts

    late = await client.enqueue("test.work", {"n": 9}, id="late-9", expires_at_ms=now_ms() - 1)
    dlq = DeadLetters(redis, registry, Layout(settings))
    actions = JobActions(redis, registry, Layout(settings), Scripts(redis))
    async with running_worker(settings, registry, "test.work"):
        await wait_until(lambda: dlq.find("test.work", late.id), what="expired")
        result = await actions.requeue("test.work", late.id, by="admin:ops")
        assert result.state == "ready"
        await wait_until(lambda: _ran(redis, 9), what="the requeued job run")
    with pytest.raises(JobStateError, match="not dead-lettered"):
        await actions.requeue("test.work", (await client.enqueue("test.work", {"n": 1})).id,
                              by="admin:ops")  # fmt: skip
