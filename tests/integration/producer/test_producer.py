"""`tgworkers.Producer`: one-line enqueueing that agrees with the worker on every key."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

import tgworkers
from tgworkers.engine.wire.keys import partition_of
from tgworkers.errors import InputError
from tgworkers.producer import Job
from tgworkers.testing.example.producer import enqueue_some


@pytest.fixture
def jobs_json(tmp_path):
    """What `tgworkers jobs --json` prints, with cfb.settle split into 4 partitions."""
    out = subprocess.run(
        [sys.executable, "-m", "tgworkers", "jobs", "--json"],
        capture_output=True,
        text=True,
        check=True,
        env={"PARTITIONS_CFB_SETTLE": "4", "PATH": ""},
    )
    path = tmp_path / "jobs.json"
    path.write_text(out.stdout)
    return path


async def test_enqueue_reports_created_then_existing(redis_url, redis):
    async with tgworkers.Producer.from_url(redis_url, prefix="pp") as producer:
        first = await producer.enqueue("cfb.settle", {"betId": "b_1"})
        again = await producer.enqueue("cfb.settle", {"betId": "b_1"})
    assert (first.id, first.created, again.created) == ("cfb.settle:b_1", True, False)
    assert await redis.xlen("{pp:cfb.settle:0}:ready") == 1


async def test_at_and_delay_put_the_job_in_the_delayed_set(redis_url, redis):
    at = datetime.now(UTC) + timedelta(hours=1)
    async with tgworkers.Producer.from_url(redis_url) as producer:
        by_at = await producer.enqueue("cfb.settle", {"betId": "b_1"}, at=at)
        by_delay = await producer.enqueue(
            "cfb.settle", {"betId": "b_2"}, delay=timedelta(minutes=5)
        )
        with pytest.raises(InputError, match="not both"):
            await producer.enqueue("cfb.settle", {"betId": "b_3"}, at=at, delay=5)
    assert by_at.run_at == int(at.timestamp() * 1000)
    scores = dict(await redis.zrange("{tgw:cfb.settle:0}:delayed", 0, -1, withscores=True))
    assert scores[b"cfb.settle:b_1"] == by_at.run_at
    assert scores[b"cfb.settle:b_2"] == pytest.approx(by_delay.run_at, abs=5)


async def test_enqueue_many_with_explicit_ids_and_a_bad_payload_enqueues_nothing(redis_url, redis):
    async with tgworkers.Producer.from_url(redis_url) as producer:
        with pytest.raises(InputError, match="betId"):
            await producer.enqueue_many(
                [Job("cfb.settle", {"betId": "b_1"}), Job("cfb.settle", {})]
            )
        assert await redis.xlen("{tgw:cfb.settle:0}:ready") == 0
        results = await producer.enqueue_many(
            [Job("tgworkers.noop", {"n": i}, id=f"noop-{i}") for i in range(3)]
        )
    assert [(r.id, r.created) for r in results] == [(f"noop-{i}", True) for i in range(3)]


async def test_a_producer_from_jobs_json_agrees_with_the_registry_on_partitions(
    redis_url, redis, jobs_json
):
    async with tgworkers.Producer.from_url(redis_url, jobs=jobs_json) as producer:
        for i in range(8):
            await producer.enqueue("cfb.settle", {"betId": f"b_{i}"})
        with pytest.raises(InputError, match="unknown field `betid`"):
            await producer.enqueue("cfb.settle", {"betid": "x"})
    for i in range(8):
        part = partition_of(f"b_{i}", 4)
        assert await redis.hexists(f"{{tgw:cfb.settle:{part}}}:jobs", f"cfb.settle:b_{i}")


async def test_from_env_reads_only_the_producer_variables(redis_url, redis):
    env = {
        "REDIS_URL": redis_url,
        "QUEUE_PREFIX": "envp",
        "PARTITIONS_CFB_SETTLE": "2",
        "SERVICE_JWT_PRIVATE_JWK": "not a key, and never read",
    }
    async with tgworkers.Producer.from_env(env, origin="playhub") as producer:
        result = await producer.enqueue("cfb.settle", {"betId": "b_9"})
        assert await producer.state("cfb.settle", result.id, {"betId": "b_9"}) == "ready"
    part = partition_of("b_9", 2)
    (entry,) = await redis.xrange(f"{{envp:cfb.settle:{part}}}:ready")
    assert entry[1][b"origin"] == b"playhub"


async def test_the_docs_example_enqueues_what_it_says(redis_url, redis):
    # tgworkers/testing/example/producer.py is the block docs/producers.md shows
    results = await enqueue_some(redis_url, bets=["b_1", "b_2"])
    assert [(r.id, r.created) for r in results] == [
        ("cfb.settle:b_1", True),
        ("cfb.settle:b_1", False),
        ("escrow.expire:e_1", True),
        ("replay-2026-12-01", True),
        ("cfb.settle:b_1", False),
        ("cfb.settle:b_2", True),
    ]
    assert await redis.zcard("{tgw:escrow:0}:delayed") == 1
