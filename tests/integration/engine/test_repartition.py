"""Partition counts are recorded and changed safely (promise 12).

A worker or producer whose `PARTITIONS_<P>` differs from the count recorded in
Redis refuses to start (exit 2, one line naming the variable and the fix);
`tgworkers repartition QUEUE N` moves a queue's state under load so that nothing
is lost, nothing runs twice, per-key exclusivity and dedupe hold across the change.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from collections import defaultdict
from typing import Any

import anyio
import pytest
from tests.conftest import make_settings
from tests.support.engine_state import runs
from tests.support.processes import ROOT
from tests.support.wait import wait_until

from tgworkers.engine.client import Client, EnqueueRequest
from tgworkers.engine.ops.repartition import Repartitioner
from tgworkers.engine.partitions import PartitionRecords
from tgworkers.engine.wire.keys import PartitionKeys
from tgworkers.errors import ConfigError, OperationError

QUEUE = "test.exclusive"
KEYS = [f"k{i}" for i in range(64)]  # few jobs per key: waiting on a key is rare


def job(job_id: str, n: int, **extra: Any) -> EnqueueRequest:
    payload = {"n": n, "key": KEYS[n % len(KEYS)], "sleep_ms": 15, **extra.pop("payload", {})}
    return EnqueueRequest(name=QUEUE, payload=payload, id=job_id, **extra)


@pytest.mark.promise(12)
def test_a_worker_with_another_count_refuses_to_start_naming_the_variable(redis_url):
    import redis as sync_redis

    client = sync_redis.Redis.from_url(redis_url)
    client.hset("{tgw}:partitions", QUEUE, "2")
    client.close()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "REDIS_URL": redis_url}
    env["PARTITIONS_TEST_EXCLUSIVE"] = "3"
    done = subprocess.run(
        [sys.executable, "-m", "tgworkers", "run", "--processors", QUEUE,
         "--app", "tests.support.jobs:PROCESSORS"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    (line,) = [ln for ln in done.stderr.splitlines() if ln.startswith("tgworkers:")]
    assert "PARTITIONS_TEST_EXCLUSIVE" in line and "records 2" in line
    assert "set PARTITIONS_TEST_EXCLUSIVE=2" in line and f"repartition {QUEUE} 3" in line
    assert "Traceback" not in done.stderr


@pytest.mark.promise(12)
async def test_a_producer_with_another_count_refuses_to_enqueue(redis, redis_url, registry):
    ok = Client(redis, registry, make_settings(redis_url))
    assert (await ok.enqueue(QUEUE, {"n": 1, "key": "a"})).created
    assert await redis.hget("{tgw}:partitions", QUEUE) == b"2"  # the first one recorded it
    other = Client(redis, registry, make_settings(redis_url, PARTITIONS_TEST_EXCLUSIVE=4))
    with pytest.raises(ConfigError, match=r"PARTITIONS_TEST_EXCLUSIVE: .* 4 .* records 2"):
        await other.enqueue(QUEUE, {"n": 2, "key": "b"})


@pytest.mark.promise(12)
async def test_repartition_under_load_loses_nothing_and_keeps_dedupe_and_exclusivity(
    redis, redis_url, registry, worker_factory
):
    old, new = make_settings(redis_url), make_settings(redis_url, PARTITIONS_TEST_EXCLUSIVE=5)
    producer = Client(redis, registry, old)
    await producer.enqueue(QUEUE, {"n": 0, "key": "kd", "mode": "permanent"}, id="dead-1")
    await producer.enqueue_many([job(f"pre-{i}", i) for i in range(40)])
    await producer.enqueue_many([job(f"late-{i}", i, delay_s=4) for i in range(10)])
    expected = {"dead-1"} | {f"pre-{i}" for i in range(40)} | {f"late-{i}" for i in range(10)}
    refusals: list[str] = []
    produced = anyio.Event()

    async def produce(n_total: int) -> None:
        client = producer
        for i in range(n_total):
            try:
                await client.enqueue_many([job(f"live-{i}", i)])
            except ConfigError as exc:  # the old count is refused once the move is done
                refusals.append(str(exc))
                client = Client(redis, registry, new)
                await client.enqueue_many([job(f"live-{i}", i)])
            expected.add(f"live-{i}")
            await anyio.sleep(0.005)
        produced.set()

    async with anyio.create_task_group() as tg, worker_factory(old, registry, QUEUE) as w_old:
        await wait_until(lambda: _ran(redis, 10), timeout_s=15, what="old worker running")
        tg.start_soon(produce, 400)
        await wait_until(lambda: _ran(redis, 60), timeout_s=15, what="load flowing")
        result = await Repartitioner(redis, registry, old).run(QUEUE, 5, timeout_s=30)
        assert (result.old, result.new) == (2, 5) and result.moved["ready"] > 0
        assert result.moved["delayed"] > 0 and result.moved["doneCopied"] > 0
        assert await w_old.partition_records.held(w_old.processors) == {QUEUE}
        async with worker_factory(new, registry, QUEUE, consumer="w-new"):
            await wait_until(produced.is_set, timeout_s=120, what="the producer done")
            await wait_until(lambda: _all_ran(redis, expected), timeout_s=120, what="every job")
    await _assert_each_ran_once_and_keys_never_overlapped(redis, expected)
    assert len(refusals) == 1 and "PARTITIONS_TEST_EXCLUSIVE" in refusals[0]
    after = Client(redis, registry, new)
    again = [job("pre-0", 0), job("live-399", 399), job("late-3", 3)]  # done: not again
    again.append(EnqueueRequest(name=QUEUE, payload={"n": 0, "key": "kd"}, id="dead-1"))
    assert not any(r.created for r in await after.enqueue_many(again))
    assert await redis.hget("{tgw}:partitions", QUEUE) == b"5"
    assert not await redis.hexists("{tgw}:control", QUEUE), "resumed"


@pytest.mark.promise(12)
async def test_shrinking_folds_every_job_into_the_remaining_partitions(redis, redis_url, registry):
    three = make_settings(redis_url, PARTITIONS_TEST_EXCLUSIVE=3)
    await Client(redis, registry, three).enqueue_many([job(f"j-{i}", i) for i in range(30)])
    result = await Repartitioner(redis, registry, three).run(QUEUE, 1)
    assert result.moved["ready"] == await redis.xlen(PartitionKeys("tgw", QUEUE, 0).ready) - (
        30 - result.moved["ready"]
    )
    assert await redis.xlen(PartitionKeys("tgw", QUEUE, 0).ready) == 30
    assert await redis.hlen(PartitionKeys("tgw", QUEUE, 0).jobs) == 30
    assert not await redis.keys("{tgw:test.exclusive:[12]}*"), "old partitions removed"


@pytest.mark.promise(12)
async def test_repartition_gives_up_while_a_job_stays_in_flight_and_moves_nothing(
    redis, redis_url, registry, worker_factory
):
    settings = make_settings(redis_url)
    # long enough to outlast the acks and the producers' re-read wait on a loaded machine
    await Client(redis, registry, settings).enqueue(QUEUE, {"n": 1, "key": "a", "sleep_ms": 12000})
    async with worker_factory(settings, registry, QUEUE):
        await wait_until(lambda: _pending(redis), timeout_s=10, what="job in flight")
        with pytest.raises(OperationError, match=r"still in flight.*nothing was moved"):
            await Repartitioner(redis, registry, settings).run(QUEUE, 4, timeout_s=0.5)
        assert await redis.hget("{tgw}:partitions", QUEUE) == b"2"
        assert not await redis.hexists("{tgw}:control", QUEUE), "resumed"
        assert not await PartitionRecords(redis, Client(redis, registry, settings).layout).held(
            registry.select(QUEUE)
        )


async def _pending(redis) -> bool:
    for p in range(2):
        stream = PartitionKeys("tgw", QUEUE, p).ready
        if await redis.exists(stream) and (await redis.xpending(stream, "tgworkers"))["pending"]:
            return True
    return False


async def _ran(redis, n: int) -> bool:
    return len(await runs(redis)) >= n


async def _all_ran(redis, expected: set[str]) -> bool:
    return {r.job_id for r in await runs(redis)} >= expected


async def _assert_each_ran_once_and_keys_never_overlapped(redis, expected: set[str]) -> None:
    records = await runs(redis)
    counts: dict[str, int] = defaultdict(int)
    by_key: dict[str | None, list[tuple[int, int]]] = defaultdict(list)
    for r in records:
        counts[r.job_id] += 1
        by_key[r.key].append((r.start_ms, r.end_ms))
    assert set(counts) == expected
    assert [j for j, c in counts.items() if c > 1] == []
    for key, spans in by_key.items():
        spans.sort()
        for (_, end), (start, _) in itertools.pairwise(spans):
            assert start >= end, f"two jobs of key {key} overlapped"


@pytest.mark.promise(12)
async def test_a_move_that_died_half_way_is_finished_by_the_same_command(
    redis, redis_url, registry
):
    two = make_settings(redis_url)
    await Client(redis, registry, two).enqueue_many([job(f"j-{i}", i) for i in range(30)])
    await redis.hset("{tgw}:partitions", QUEUE, "2>4")  # as left by a command that died
    with pytest.raises(OperationError, match=f"finish that first: tgworkers repartition {QUEUE} 4"):
        await Repartitioner(redis, registry, two).run(QUEUE, 3)
    result = await Repartitioner(redis, registry, two).run(QUEUE, 4)
    assert (result.old, result.new, result.paused) == (2, 4, True)  # the operator resumes
    assert await redis.hget("{tgw}:partitions", QUEUE) == b"4"
    lengths = [await redis.xlen(PartitionKeys("tgw", QUEUE, p).ready) for p in range(4)]
    assert sum(lengths) == 30 and all(lengths), lengths


@pytest.mark.promise(12)
async def test_a_producer_waits_out_a_move_then_enqueues_with_the_new_count(
    redis, redis_url, registry
):
    await redis.hset("{tgw}:partitions", QUEUE, "2>5")
    new = Client(redis, registry, make_settings(redis_url, PARTITIONS_TEST_EXCLUSIVE=5))
    results = []

    async def produce() -> None:
        results.append(await new.enqueue(QUEUE, {"n": 1, "key": "a"}))

    async with anyio.create_task_group() as tg:
        tg.start_soon(produce)
        await anyio.sleep(0.5)
        assert not results, "nothing enqueued while the queue moves"
        await redis.hset("{tgw}:partitions", QUEUE, "5")
    assert results[0].created


@pytest.mark.promise(12)
async def test_jobs_land_where_the_new_count_places_them_even_with_an_empty_key(
    redis, redis_url, registry
):
    two = make_settings(redis_url)
    reqs = [job(f"e-{i}", i, payload={"key": ""}) for i in range(6)] + [
        job(f"k-{i}", i) for i in range(30)
    ]
    await Client(redis, registry, two).enqueue_many(reqs)
    await Repartitioner(redis, registry, two).run(QUEUE, 3)
    three = Client(redis, registry, make_settings(redis_url, PARTITIONS_TEST_EXCLUSIVE=3))
    for r in reqs:  # the new layout finds every job in the partition it computes
        assert await three.state(QUEUE, r.id, r.payload) == "ready", r.id
