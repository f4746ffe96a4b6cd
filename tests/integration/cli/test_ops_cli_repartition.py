"""`repartition QUEUE N` and the partition-count refusal, through the real CLI."""

from __future__ import annotations

import json
import time

import anyio
import pytest
from tests.support.cli_runner import cli

from tgworkers.engine.client import EnqueueRequest
from tgworkers.engine.wire.keys import PartitionKeys


@pytest.mark.promise(12)
async def test_repartition_moves_jobs_prints_json_and_says_when_nothing_to_do(
    redis, redis_url, client
):
    keys = [f"k{i}" for i in range(20)]
    await client.enqueue_many(
        [
            EnqueueRequest(name="test.exclusive", payload={"n": i, "key": k})
            for i, k in enumerate(keys)
        ]
    )
    moved = await cli(redis_url, "repartition", "test.exclusive", "3", "--json")
    assert moved.rc == 0, moved.err
    doc = json.loads(moved.out)
    assert (doc["queue"], doc["old"], doc["new"]) == ("test.exclusive", 2, 3)
    assert doc["moved"]["ready"] > 0
    lengths = [await redis.xlen(PartitionKeys("tgw", "test.exclusive", p).ready) for p in range(3)]
    assert sum(lengths) == 20 and all(lengths), lengths
    again = await cli(redis_url, "repartition", "test.exclusive", "3",
                      env={"PARTITIONS_TEST_EXCLUSIVE": "3"})  # fmt: skip
    assert again.rc == 0 and "already has 3 partitions" in again.out


async def test_repartition_is_audited_at_its_start_and_end(redis, redis_url, client):
    await client.enqueue("test.exclusive", {"n": 1, "key": "a"})
    moved = await cli(redis_url, "repartition", "test.exclusive", "3", "--json")
    assert moved.rc == 0, moved.err
    end, start = await redis.xrevrange("{tgw}:audit")
    assert (start[1][b"action"], end[1][b"action"]) == (b"repartition.start", b"repartition")
    assert json.loads(start[1][b"details"]) == {"queue": "test.exclusive", "count": 3}
    details = json.loads(end[1][b"details"])
    assert (details["old"], details["new"], details["moved"]["ready"]) == (2, 3, 1)
    assert end[1][b"via"] == b"cli" and b"failed" not in end[1][b"details"]


@pytest.mark.promise(12)
async def test_a_producer_with_the_old_count_exits_2_naming_the_variable(redis, redis_url):
    await redis.hset("{tgw}:partitions", "test.exclusive", "3")
    refused = await cli(redis_url, "enqueue", "test.exclusive", '{"n": 1, "key": "a"}')
    assert refused.rc == 2
    (line,) = refused.err_lines
    assert line.startswith("tgworkers: PARTITIONS_TEST_EXCLUSIVE:") and "records 3" in line


@pytest.mark.parametrize("count", ["0", "2000"])
async def test_repartition_refuses_a_count_out_of_range(redis_url, count):
    bad = await cli(redis_url, "repartition", "test.exclusive", count)
    assert bad.rc == 2
    (line,) = bad.err_lines
    assert "N: expected a partition count from 1 to 1024" in line


@pytest.mark.promise(12)
async def test_operator_commands_with_a_stale_count_exit_2_instead_of_reading_wrong_partitions(
    redis, redis_url
):
    await redis.hset("{tgw}:partitions", "test.exclusive", "5")
    stale = await cli(redis_url, "stats", "--json")
    assert stale.rc == 2
    (line,) = stale.err_lines
    assert "PARTITIONS_TEST_EXCLUSIVE" in line and "records 5" in line
    fresh = await cli(redis_url, "stats", "--json", env={"PARTITIONS_TEST_EXCLUSIVE": "5"})
    assert fresh.rc == 0, fresh.err


@pytest.mark.promise(12)
async def test_repartition_refuses_while_a_live_worker_has_not_acknowledged_the_pause(
    redis, redis_url, client
):
    """A worker of a version before the protocol heartbeats but never acks: name it."""
    await client.enqueue_many(
        [EnqueueRequest(name="test.exclusive", payload={"n": i, "key": f"k{i}"}) for i in range(20)]
    )
    async with anyio.create_task_group() as tg:
        tg.start_soon(_heartbeat, redis, "old-version-w")
        refused = await cli(redis_url, "repartition", "test.exclusive", "3", "--ack-timeout", "0.5")
        assert refused.rc == 1
        (line,) = refused.err_lines
        assert "old-version-w did not acknowledge the pause" in line and "nothing was moved" in line
        assert await redis.hget("{tgw}:partitions", "test.exclusive") == b"2"
        assert not await redis.hexists("{tgw}:control", "test.exclusive"), "resumed"
        moved = await cli(redis_url, "repartition", "test.exclusive", "3", "--ack-timeout", "0.5",
                          "--proceed-unacked", "--json")  # fmt: skip
        tg.cancel_scope.cancel()
    assert moved.rc == 0, moved.err
    doc = json.loads(moved.out)
    assert doc["unacked"] == ["old-version-w"] and doc["acked"] == 0 and doc["malformed"] == 0
    assert await redis.hget("{tgw}:partitions", "test.exclusive") == b"3"


async def _heartbeat(redis, consumer: str) -> None:
    """What a worker's heartbeat loop writes, every second."""
    while True:
        await redis.zadd("{tgw}:workers", {consumer: int(time.time() * 1000)})
        await anyio.sleep(1)
