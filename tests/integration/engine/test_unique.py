from __future__ import annotations

import pytest
from tests.support.engine_state import idle, pk, runs
from tests.support.wait import wait_until

from tgworkers.engine.layout import Layout
from tgworkers.engine.ops.dlq import DeadLetters


@pytest.mark.promise(5)
async def test_enqueue_of_a_ready_or_delayed_id_does_nothing_and_says_so(client):
    first = await client.enqueue("test.unique", {"n": 1})
    again = await client.enqueue("test.unique", {"n": 1})
    assert (first.created, again.created) == (True, False)
    assert first.id == again.id == "test.unique:1"
    later = await client.enqueue("test.work", {"n": 2}, id="fixed", delay_s=60)
    assert later.created
    assert not (await client.enqueue("test.work", {"n": 2}, id="fixed")).created


@pytest.mark.promise(5)
async def test_enqueue_of_a_running_id_does_nothing(
    redis, client, settings, registry, worker_factory
):
    async with worker_factory(settings, registry, "test.work"):
        await client.enqueue("test.work", {"n": 1, "sleep_ms": 500}, id="busy")
        await wait_until(lambda: _pending(redis), timeout_s=5, what="running")
        assert not (await client.enqueue("test.work", {"n": 1}, id="busy")).created


@pytest.mark.promise(5)
async def test_finished_id_is_not_created_again_within_the_dedupe_window(
    redis, client, settings, registry, worker_factory
):
    async with worker_factory(settings, registry, "test.work"):
        await client.enqueue("test.unique", {"n": 7})
        await wait_until(lambda: redis.llen("test:runs"), timeout_s=5, what="run")
        await wait_until(lambda: idle(redis), timeout_s=5, what="idle")
        assert not (await client.enqueue("test.unique", {"n": 7})).created
    assert len(await runs(redis)) == 1


@pytest.mark.promise(5)
async def test_finished_id_can_be_created_again_after_the_dedupe_window(
    redis, redis_url, registry, worker_factory
):
    from tests.conftest import make_settings

    from tgworkers.engine.client import Client

    settings = make_settings(redis_url, DEDUPE_TTL_S=60)  # the shortest window allowed
    client = Client(redis, registry, settings)
    async with worker_factory(settings, registry, "test.work"):
        res = await client.enqueue("test.unique", {"n": 7})
        await wait_until(lambda: idle(redis), timeout_s=5, what="idle")
        await wait_until(lambda: redis.llen("test:runs"), timeout_s=5, what="run")
        assert not await _created(client)  # still inside the window
        done = Layout(settings).partitions(registry.queue("test.work"))[0].done
        finished = await redis.zscore(done, res.id)
        assert finished is not None
        await redis.zadd(done, {res.id: finished - 61_000})  # as if 61 s had passed
        await wait_until(lambda: _created(client), timeout_s=5, what="re-created after the window")


async def _created(client) -> bool:
    return (await client.enqueue("test.unique", {"n": 7})).created


@pytest.mark.promise(5)
async def test_dead_lettered_id_is_not_created_again_and_requeue_keeps_the_id(
    redis, client, settings, registry, worker_factory
):
    dlq = DeadLetters(redis, registry, Layout(settings))
    async with worker_factory(settings, registry, "test.work"):
        await client.enqueue("test.work", {"n": 1, "mode": "permanent"}, id="sad")
        await wait_until(lambda: dlq.count("test.work"), timeout_s=5, what="dead-lettered")
        assert not (await client.enqueue("test.work", {"n": 1}, id="sad")).created
        out = await dlq.requeue("test.work", ["sad"], by="alice")
        assert out["requeued"] == 1
        await wait_until(lambda: dlq.count("test.work"), timeout_s=5, what="dead again")
    got = await runs(redis)
    assert [r.job_id for r in got] == ["sad", "sad"]
    job = await dlq.show("test.work", "sad")
    assert any(e["kind"] == "replayed" and "alice" in e["message"] for e in job.errors)


async def test_stale_state_record_does_not_block_a_new_enqueue(redis, client):
    await client.enqueue("test.work", {"n": 1}, id="ghost")
    entries = await redis.xrange(pk().ready)
    await redis.xdel(pk().ready, entries[0][0])  # deleted behind the engine's back
    assert (await client.enqueue("test.work", {"n": 1}, id="ghost")).created


async def _pending(redis) -> bool:
    groups = await redis.xinfo_groups(pk().ready)
    return any(int(g["pending"]) for g in groups)
