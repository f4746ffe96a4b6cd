"""One job by id: cancel it while it runs, delete it, run it now (issue 26)."""

from __future__ import annotations

import time

import pytest
from tests.conftest import running_worker
from tests.support.engine_state import pk, queue_state, runs
from tests.support.wait import wait_until

from tgworkers.engine.client import Client
from tgworkers.engine.layout import Layout
from tgworkers.engine.ops.dlq import DeadLetters
from tgworkers.engine.ops.job_actions import JobActions, JobNotFoundError, JobStateError
from tgworkers.engine.wire.scripts import Scripts


@pytest.fixture
def actions(redis, registry, settings) -> JobActions:
    return JobActions(redis, registry, Layout(settings), Scripts(redis))


async def in_flight(redis, job_id: str) -> bool:
    state = await redis.hget(pk().jobs, job_id)
    if not state or not state.startswith(b"r:"):
        return False
    entry = state[2:].decode()
    return bool(await redis.xpending_range(pk().ready, "tgworkers", entry, entry, 1))


async def test_a_cancelled_running_job_is_interrupted_and_dead_lettered_naming_who(
    redis, registry, settings, client: Client, actions
):
    job = await client.enqueue("test.work", {"n": 1, "sleep_ms": 60_000})
    async with running_worker(settings, registry, "test.work") as worker:
        await wait_until(lambda: in_flight(redis, job.id), what="the job running")
        started = time.monotonic()
        result = await actions.cancel("test.work", job.id, by="admin:ops")
        assert result.state == "dead", result  # within the 3 s the call waits
        assert time.monotonic() - started < 3
        dead = await DeadLetters(redis, registry, Layout(settings)).find("test.work", job.id)
        assert dead is not None and dead.reason == "cancelled by admin:ops"
        assert [e["kind"] for e in dead.errors] == ["cancelled"]
        assert await redis.hlen(worker.layout.globals.cancels) == 0  # the owner acted
        await client.enqueue("test.work", {"n": 2})  # the worker goes on
        await wait_until(lambda: _ran(redis, 2), what="the next job")
    assert [r.n for r in await runs(redis)] == [2]  # the cancelled handler never finished


async def test_only_a_running_job_is_cancelled(client: Client, actions):
    ready = await client.enqueue("test.work", {"n": 1})
    with pytest.raises(JobStateError, match="not running"):
        await actions.cancel("test.work", ready.id, by="admin:ops")
    with pytest.raises(JobNotFoundError):
        await actions.cancel("test.work", "no-such-job", by="admin:ops")


async def test_delete_removes_a_ready_or_a_delayed_job_and_refuses_a_running_one(
    redis, registry, settings, client: Client, actions
):
    ready = await client.enqueue("test.work", {"n": 1})
    later = await client.enqueue("test.work", {"n": 2}, delay_s=3600)
    assert (await actions.delete("test.work", ready.id)).state == "deleted"
    assert (await actions.delete("test.work", later.id)).state == "deleted"
    assert await queue_state(redis) == {
        "ready": 0, "pending": 0, "delayed": 0, "delayed_jobs": 0, "jobs": 0, "dlq": 0,
    }  # fmt: skip
    with pytest.raises(JobNotFoundError):
        await actions.delete("test.work", ready.id)  # twice = once: nothing left to delete
    running = await client.enqueue("test.work", {"n": 3, "sleep_ms": 60_000})
    async with running_worker(settings, registry, "test.work"):
        await wait_until(lambda: in_flight(redis, running.id), what="the job running")
        with pytest.raises(JobStateError, match="cancel it instead"):
            await actions.delete("test.work", running.id)
        await actions.cancel("test.work", running.id, by="admin:ops")


async def test_run_now_makes_a_delayed_job_run_at_once(
    redis, registry, settings, client: Client, actions
):
    later = await client.enqueue("test.work", {"n": 7}, delay_s=3600)
    async with running_worker(settings, registry, "test.work"):
        result = await actions.run_now("test.work", later.id)
        assert result.state == "ready"
        await wait_until(lambda: _ran(redis, 7), what="the job run")
    assert [(r.n, r.attempt) for r in await runs(redis)] == [(7, 1)]
    with pytest.raises(JobNotFoundError):
        await actions.run_now("test.work", later.id)  # done: not kept


async def _ran(redis, n: int) -> bool:
    return any(r.n == n for r in await runs(redis))
