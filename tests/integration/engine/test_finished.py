"""Finished jobs, looked up by id prefix: when, after which attempt, with which trace."""

from __future__ import annotations

import time

import pytest
from tests.conftest import running_worker
from tests.support.engine_state import pk
from tests.support.wait import wait_until

from tgworkers.engine.client import Client
from tgworkers.engine.layout import Layout
from tgworkers.engine.ops.finished import FinishedJobs
from tgworkers.engine.wire.scripts import script_text
from tgworkers.errors import InputError


async def test_a_finished_job_is_found_by_id_prefix_with_its_attempt_and_time(
    redis, registry, settings, client: Client
):
    finder = FinishedJobs(redis, registry, Layout(settings))
    started = int(time.time() * 1000)
    await client.enqueue("test.unique", {"n": 1})
    await client.enqueue("test.unique", {"n": 12, "fail_times": 1})  # done on attempt 2
    await client.enqueue("test.work", {"n": 3})  # a random id: nobody can ask for it
    async with running_worker(settings, registry, "test.work"):
        page = await wait_until(
            lambda: _found(finder, "test.unique:", 2), timeout_s=10, what="two records"
        )
    one, twelve = page.items
    assert (one.id, one.attempt, twelve.id, twelve.attempt) == (
        "test.unique:1", 1, "test.unique:12", 2,
    )  # fmt: skip
    assert one.queue == "test.work" and one.name == "test.unique" and one.consumer == "w1"
    assert started <= one.finished_at <= int(time.time() * 1000)
    assert one.traceparent is None or one.trace_id is not None
    narrow = await finder.search("test.unique:12", queue="test.work", limit=10)
    assert [r.id for r in narrow.items] == ["test.unique:12"]
    assert (await finder.search("test.work", queue=None, limit=10)).items == []
    by_attempt = await finder.search("test.unique:", queue=None, limit=10, sort="-attempt")
    assert [r.id for r in by_attempt.items] == ["test.unique:12", "test.unique:1"]
    with pytest.raises(InputError, match="sort: expected one of id, queue, finishedAt"):
        await finder.search("x", queue=None, limit=10, sort="payload")


async def test_records_older_than_the_window_are_forgotten(redis):
    script = redis.register_script(script_text("finished_record"))
    keys = [pk("test.work").finished, pk("test.work").finished_at, pk("test.work").finished_ids]
    old = int(time.time() * 1000) - 10_000
    await script(keys=keys, args=[60_000, 500, "a:1", old, "{}"])
    assert await script(keys=keys, args=[60_000, 500]) == 0  # inside the window: kept
    assert await script(keys=keys, args=[5_000, 500, "a:2", old + 9_000, "{}"]) == 1
    assert await redis.hkeys(keys[0]) == [b"a:2"]
    assert await redis.zrange(keys[2], 0, -1) == [b"a:2"]


async def _found(finder: FinishedJobs, prefix: str, n: int):
    page = await finder.search(prefix, queue=None, limit=10)
    return page if len(page.items) >= n else None
