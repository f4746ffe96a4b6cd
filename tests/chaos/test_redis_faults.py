"""Faults that production Redis really produces, against worker subprocesses (promises 1, 3, 6, 7, 13).

Each test reproduces one item of the engine-faults issue: Redis paused past the
visibility timeout, two processes given one consumer name, bytes that are not
UTF-8, `maxmemory` reached under load, a malformed delayed record, a stream
deleted under a blocked read, and job records flushed under a running worker.
"""

from __future__ import annotations

import signal
from typing import Any

import anyio
import httpx
import pytest
from redis.asyncio import Redis
from tests.chaos.conftest import (
    Fleet,
    events,
    now_ms,
    pending_by_consumer,
    pk,
    queue_idle,
    runs,
    stats,
    wait_started,
)
from tests.support.jobs import CLEANUPS_KEY, OVERLAPS_KEY
from tests.support.wait import wait_until

from tgworkers.devstack.redis import free_port
from tgworkers.engine.client import Client, EnqueueRequest
from tgworkers.engine.wire.keys import GROUP, PartitionKeys

pytestmark = [pytest.mark.chaos]


async def _ran(r: Redis, ids: set[str]) -> bool:
    return ids <= {x.job_id for x in await runs(r)}


async def _processed(r: Redis, n: int) -> bool:
    return (await stats(r, pk())).get("processed", 0) >= n


def _exclusive(partition: int) -> PartitionKeys:
    return PartitionKeys("tgw", "test.exclusive", partition)


@pytest.mark.promise(3)
@pytest.mark.promise(6)
async def test_redis_paused_past_the_visibility_timeout_never_runs_a_key_twice_at_once(
    r: Redis, chaos_client: Client, fleet: Fleet
) -> None:
    worker = await fleet.start_ready("test.exclusive", VISIBILITY_TIMEOUT_MS="2000")
    reqs = [
        EnqueueRequest(name="test.exclusive",
                       payload={"n": i, "key": f"k{i % 2}", "sleep_ms": 2500, "mode": "track"})
        for i in range(6)
    ]  # fmt: skip
    jobs = await chaos_client.enqueue_many(reqs)

    async def both_keys_running() -> bool:
        return [await r.scard(f"test:active:k{i}") for i in (0, 1)] == [1, 1]

    await wait_until(both_keys_running, timeout_s=10, what="both keys inside a slow call")
    await r.execute_command("CLIENT", "PAUSE", 3500, "ALL")  # a fork/AOF stall, a failover

    await wait_until(lambda: _ran(r, {j.id for j in jobs}), timeout_s=60, what="all 6 ran")
    assert await r.lrange(OVERLAPS_KEY, 0, -1) == [], worker.log()[-6000:]
    assert worker.alive(), worker.log()
    await wait_until(
        lambda: _processed_all(r, 6), timeout_s=15, what="all settled once"
    )  # fmt: skip


@pytest.mark.promise(3)
@pytest.mark.promise(6)
async def test_a_run_cancelled_under_a_redis_pause_ends_its_clean_up_before_its_rerun_starts(
    r: Redis, chaos_client: Client, fleet: Fleet
) -> None:
    """The watchdog cancels a run whose lease it cannot renew (Redis paused past VT); its
    handler awaits a compensation before re-raising. The entry left the worker's table at
    once, so the sweep reclaimed it after the pause and started it again in the same
    process while the first run was still compensating: two runs, one key."""
    worker = await fleet.start_ready("test.exclusive", VISIBILITY_TIMEOUT_MS="2000")
    payload = {"n": 1, "key": "k0", "sleep_ms": 4000, "cleanup_ms": 6000, "mode": "track"}
    job = await chaos_client.enqueue("test.exclusive", payload)

    await wait_until(lambda: r.get("test:sleeping:k0"), timeout_s=10, what="the job in its call")
    await r.execute_command("CLIENT", "PAUSE", 3500, "ALL")  # past VT: the watchdog cancels

    await wait_until(lambda: _ran(r, {job.id}), timeout_s=60, what="the job ran to its end")
    try:
        await wait_until(lambda: r.llen(CLEANUPS_KEY), timeout_s=15, what="the run compensated")
    except AssertionError:
        raise AssertionError(f"no clean-up: {await runs(r)}\n{worker.log()[-4000:]}") from None
    assert await r.lrange(OVERLAPS_KEY, 0, -1) == [], worker.log()[-3000:]
    await wait_until(lambda: _processed_all(r, 1), timeout_s=15, what="settled once")
    assert worker.alive(), worker.log()


async def _processed_all(r: Redis, n: int) -> bool:
    got = [(await stats(r, _exclusive(p))).get("processed", 0) for p in (0, 1)]
    return sum(got) == n


@pytest.mark.promise(3)
async def test_two_workers_started_with_one_consumer_name_still_fence_each_other(
    r: Redis, chaos_client: Client, fleet: Fleet
) -> None:
    a = await fleet.start_ready("test.work", CONSUMER_NAME="same")
    job = await chaos_client.enqueue("test.work", {"n": 1, "sleep_ms": 8000})

    async def held_by(name: str) -> bool:
        return (await pending_by_consumer(r, pk())).get(name, 0) == 1

    await wait_until(lambda: held_by(fleet.consumer(a)), timeout_s=5, what="A runs the job")
    a.signal(signal.SIGSTOP)  # a zombie: frozen past the visibility timeout
    b = await fleet.start_ready("test.work", CONSUMER_NAME="same")
    assert fleet.consumer(a) != fleet.consumer(b), "two processes share a consumer name"
    assert fleet.consumer(b).startswith("same~")
    await wait_until(lambda: held_by(fleet.consumer(b)), timeout_s=10, what="B reclaimed it")

    a.signal(signal.SIGCONT)  # A wakes inside its 8 s call, long after its lease ended
    try:
        await wait_until(lambda: events(a, "job.lease_lost"), timeout_s=10, what="A stood down")
    except AssertionError:
        raise AssertionError(f"A did not stand down:\n{a.log()[-3000:]}") from None
    await wait_until(lambda: _processed(r, 1), timeout_s=15, what="job done")
    await wait_until(lambda: queue_idle(r, pk()), timeout_s=5, what="queue idle")
    assert [x.pid for x in await runs(r) if x.job_id == job.id] == [b.pid]
    assert (await stats(r, pk())).get("processed") == 1
    assert a.alive() and b.alive()


@pytest.mark.promise(7)
async def test_a_payload_that_is_not_utf8_is_dead_lettered_and_the_worker_goes_on(
    r: Redis, chaos_client: Client, fleet: Fleet
) -> None:
    worker = await fleet.start_ready("test.exclusive")
    raw = b'{"n": 1, "key": "k\xff"}'
    await r.xadd(_exclusive(0).ready, {"id": "bad-bytes", "name": "test.exclusive",
                                       "payload": raw, "key": "k"})  # fmt: skip

    async def dead() -> list[Any]:
        return list(await r.xrange(_exclusive(0).dlq))

    await wait_until(dead, timeout_s=10, what="the bad entry dead-lettered")
    ((_, fields),) = await dead()
    assert fields[b"payload"] == raw  # kept byte for byte
    assert b"not UTF-8" in fields[b"reason"]
    good = await chaos_client.enqueue("test.exclusive", {"n": 2, "key": "k"})
    await wait_until(lambda: _ran(r, {good.id}), timeout_s=10, what="the next job ran")
    assert worker.alive(), worker.log()


@pytest.mark.promise(13)
async def test_maxmemory_reached_under_load_stops_no_worker_and_every_job_completes(
    r: Redis, chaos_client: Client, fleet: Fleet
) -> None:
    port = free_port()
    w1 = await fleet.start_ready("test.work", PORT=str(port))
    w2 = await fleet.start_ready("test.work")
    n = 1200
    jobs = await chaos_client.enqueue_many(
        [EnqueueRequest(name="test.work", payload={"n": i, "sleep_ms": 60}) for i in range(n)]
    )
    await wait_until(lambda: _processed(r, 50), timeout_s=20, what="work under way")
    ready_url = f"http://127.0.0.1:{port}/readyz"
    async with httpx.AsyncClient(timeout=5) as http:
        await r.config_set("maxmemory", 1)  # noeviction: every write that adds is refused
        try:

            async def not_ready() -> bool:
                answer = await http.get(ready_url)
                return answer.status_code == 503 and answer.json()["status"] == "redis_failing"

            await wait_until(not_ready, timeout_s=10, what="/readyz says writes fail")
            w3 = fleet.start("test.work")  # a worker (re)started while Redis refuses writes
            await anyio.sleep(6)  # the fault's length, not a wait for an outcome
            assert w1.alive() and w2.alive() and w3.alive(), w1.log() + w3.log()
        finally:
            await r.config_set("maxmemory", 0)
        await wait_until(lambda: _ran(r, {j.id for j in jobs}), timeout_s=90, what="every job")
        await wait_until(lambda: queue_idle(r, pk()), timeout_s=15, what="queue idle")

        async def ready() -> bool:
            return (await http.get(ready_url)).status_code == 200

        await wait_until(ready, timeout_s=10, what="/readyz ready again")
    assert await r.xlen(pk().dlq) == 0
    assert w1.alive() and w2.alive()
    assert any(e.get("error") == "OutOfMemoryError" for e in events(w1, "redis.down"))
    await wait_started(w3)  # it got through group creation at maxmemory and runs
    assert w3.alive()


@pytest.mark.promise(1)
@pytest.mark.promise(7)
async def test_a_malformed_delayed_record_is_dead_lettered_with_its_bytes_and_the_next_promoted(
    r: Redis, chaos_client: Client, fleet: Fleet
) -> None:
    worker = await fleet.start_ready("test.work")
    raw = b'\xff["id", "broken"'  # not JSON, not UTF-8
    await r.hset(pk().delayed_jobs, "broken", raw)
    await r.hset(pk().jobs, "broken", "d")
    await r.zadd(pk().delayed, {"broken": now_ms() - 10})
    later = await chaos_client.enqueue("test.work", {"n": 1}, delay_s=0.3)

    async def dead() -> list[Any]:
        return list(await r.xrange(pk().dlq))

    await wait_until(dead, timeout_s=10, what="the record dead-lettered")
    ((entry, fields),) = await dead()
    assert fields[b"raw"] == raw and fields[b"id"] == b"broken"
    assert fields[b"reason"].startswith(b"malformed delayed record")
    assert await r.hget(pk().jobs, "broken") == b"x:" + entry  # still known: dedupe, `dlq show`
    await wait_until(lambda: _ran(r, {later.id}), timeout_s=10, what="the next job promoted")
    assert worker.alive(), worker.log()


@pytest.mark.promise(13)
async def test_stream_deleted_under_a_blocked_read_and_records_flushed_stop_no_worker(
    r: Redis, chaos_client: Client, fleet: Fleet
) -> None:
    worker = await fleet.start_ready("test.work")
    first = await chaos_client.enqueue("test.work", {"n": 1})
    await wait_until(lambda: _ran(r, {first.id}), timeout_s=10, what="a first job")
    await r.delete(pk().ready)  # UNBLOCKED: the blocked XREADGROUP's stream is gone
    second = await chaos_client.enqueue("test.work", {"n": 2})
    await wait_until(lambda: _ran(r, {second.id}), timeout_s=15, what="a job after the delete")
    await r.xgroup_destroy(pk().ready, GROUP)  # the group alone gone: NOGROUP
    again = await chaos_client.enqueue("test.work", {"n": 5})
    await wait_until(lambda: _ran(r, {again.id}), timeout_s=15, what="a job after XGROUP DESTROY")

    held = await chaos_client.enqueue("test.work", {"n": 3, "sleep_ms": 1500})
    await wait_until(lambda: r.exists("test:runs"), timeout_s=5, what="runs list")

    async def running() -> bool:
        return sum((await pending_by_consumer(r, pk())).values()) == 1

    await wait_until(running, timeout_s=10, what="a job running")
    await r.flushdb()  # an operator's mistake: every job record, stream and group gone
    third = await chaos_client.enqueue("test.work", {"n": 4})
    await wait_until(lambda: _ran(r, {third.id}), timeout_s=15, what="a job after FLUSHDB")
    assert worker.alive(), worker.log()
    assert held.id  # flushed with the rest: an operator dropped it, not the engine


@pytest.mark.promise(3)
async def test_a_handler_blocking_its_event_loop_past_vt_is_fenced_and_the_job_ends_once(
    r: Redis, chaos_client: Client, fleet: Fleet
) -> None:
    a = await fleet.start_ready("test.work")
    job = await chaos_client.enqueue("test.work", {"n": 1, "sleep_ms": 4000, "mode": "block"})

    async def held() -> bool:
        return sum((await pending_by_consumer(r, pk())).values()) == 1

    await wait_until(held, timeout_s=5, what="A blocked inside the job")
    b = await fleet.start_ready("test.work")  # reclaims after VT while A cannot answer
    await wait_until(lambda: _processed(r, 1), timeout_s=20, what="job done")
    await wait_until(lambda: queue_idle(r, pk()), timeout_s=10, what="queue idle")
    assert (await stats(r, pk())).get("processed") == 1
    assert events(a, "job.settle_refused") or events(a, "job.lease_lost"), a.log()
    assert {x.pid for x in await runs(r) if x.job_id == job.id} <= {a.pid, b.pid}
    assert a.alive() and b.alive()
