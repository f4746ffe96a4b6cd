"""Key layout (promise 12): every key of a queue partition shares one hash tag, so one
slot; jobs land in the partition `keys.partition_of` names (sha256[0:4] mod N)."""

from __future__ import annotations

import hashlib
import re
import socket
import subprocess
import tempfile
from collections import defaultdict
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis as sync_redis
from redis.crc import key_slot
from tests.support.engine_state import runs
from tests.support.redis_server import free_port
from tests.support.wait import wait_until, wait_until_sync

from tgworkers.engine.client import Client, EnqueueRequest
from tgworkers.engine.wire.keys import PartitionKeys, partition_of

KEYS = [f"key-{i}" for i in range(16)]
TAG = re.compile(rb"^\{([^}]*)\}")


@pytest.mark.promise(12)
async def test_every_key_of_a_partition_shares_one_hash_tag_and_slot(
    redis: Any, redis_url: str, registry: Any, worker_factory: Any, keyslot: Any
) -> None:
    from tests.conftest import make_settings

    settings = make_settings(redis_url, PARTITIONS_TEST_EXCLUSIVE=2)
    client = Client(redis, registry, settings)
    reqs = [
        EnqueueRequest(name="test.exclusive", payload={"n": i, "key": k, "mode": mode})
        for i, (k, mode) in enumerate([(k, "ok") for k in KEYS] + [(KEYS[0], "permanent")])
    ]
    jobs = await client.enqueue_many(reqs)
    await _assert_jobs_in_their_partition(redis, jobs, [r.payload["key"] for r in reqs])
    await client.enqueue("test.exclusive", {"n": 99, "key": KEYS[1]}, delay_s=60)  # a delayed set

    async with worker_factory(settings, registry, "test.exclusive"):
        await wait_until(lambda: _ran(redis, len(reqs)), timeout_s=10, what="all jobs ran")

    by_tag: dict[bytes, list[bytes]] = defaultdict(list)
    for key in await redis.keys("{tgw:test.exclusive:*"):
        match = TAG.match(key)
        assert match, key
        by_tag[match.group(1)].append(key)
    assert set(by_tag) == {b"tgw:test.exclusive:0", b"tgw:test.exclusive:1"}
    for tag, keys in by_tag.items():
        suffixes = {k[len(tag) + 2 :] for k in keys}
        assert {b":ready", b":stats"} <= suffixes, suffixes
        slots = {keyslot(k) for k in keys}
        assert slots == {key_slot(b"{" + tag + b"}")}, (tag, keys)  # server and redis-py agree
    assert any(b":dlq" in k for k in await redis.keys("{tgw:test.exclusive:*"))
    assert any(b":delayed" in k for k in await redis.keys("{tgw:test.exclusive:*"))


def test_partition_formula_is_sha256_prefix_mod_n() -> None:
    for key in [*KEYS, "", "é-ü"]:
        digest = hashlib.sha256(key.encode()).digest()
        for n in (2, 3, 7, 16):
            assert partition_of(key, n) == int.from_bytes(digest[:4], "big") % n
        assert partition_of(key, 1) == 0
    assert {partition_of(k, 2) for k in KEYS} == {0, 1}, "16 keys all in one of 2 partitions"


async def _assert_jobs_in_their_partition(redis: Any, jobs: list[Any], keys: list[str]) -> None:
    for job, key in zip(jobs, keys, strict=True):
        where = partition_of(key, 2)
        pk = PartitionKeys("tgw", "test.exclusive", where)
        assert await redis.hexists(pk.jobs, job.id), (key, where)
        other = PartitionKeys("tgw", "test.exclusive", 1 - where)
        assert not await redis.hexists(other.jobs, job.id)


@pytest.fixture(scope="module")
def keyslot() -> Iterator[Callable[[bytes], int]]:
    """CLUSTER KEYSLOT from a cluster-enabled redis-server (standalone refuses it)."""
    port = _cluster_port()
    with tempfile.TemporaryDirectory() as tmp:
        args = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", tmp,
                "--cluster-enabled", "yes", "--save", ""]  # fmt: skip
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL)
        node = sync_redis.Redis(port=port)
        try:
            wait_until_sync(lambda: _pings(node), timeout_s=5, what="cluster node up")
            yield lambda key: int(node.execute_command("CLUSTER", "KEYSLOT", key))
        finally:
            node.close()
            proc.kill()
            proc.wait()


def _cluster_port() -> int:
    """A free port whose cluster bus port (+10000) is valid and free too."""
    while True:
        port = free_port()
        if port + 10_000 <= 65_535 and _bindable(port + 10_000):
            return port


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _pings(node: sync_redis.Redis) -> bool:
    try:
        return bool(node.ping())
    except sync_redis.RedisError:
        return False


async def _ran(redis: Any, n: int) -> bool:
    return len(await runs(redis)) >= n
