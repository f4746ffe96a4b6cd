"""The engine unchanged on a 3-master Redis Cluster (promise 12): every key of a
partition in one slot, scripts by EVALSHA on the owning node, one reader per
partition."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.conftest import make_settings
from tests.support.redis_server import free_port
from tests.support.wait import wait_until

from tgworkers.engine.client import Client, EnqueueRequest
from tgworkers.engine.wire.connection import connect

pytestmark = pytest.mark.skipif(shutil.which("redis-cli") is None, reason="needs redis-cli")


def _cluster_ports() -> list[int]:
    ports: list[int] = []
    while len(ports) < 3:  # the cluster bus listens on port + 10000
        p = free_port()
        if p + 10000 < 65536 and p not in ports:
            ports.append(p)
    return ports


@pytest.fixture(scope="module")
def cluster_url() -> Iterator[str]:
    root = Path(tempfile.mkdtemp(prefix="tgw-cluster-"))
    ports = _cluster_ports()
    procs = [
        subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(p),
                "--bind",
                "127.0.0.1",
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                str(root / f"{p}.conf"),
                "--cluster-node-timeout",
                "2000",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(root),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for p in ports
    ]
    try:
        for p in ports:
            wait_ping(p)
        subprocess.run(
            ["redis-cli", "--cluster", "create", *[f"127.0.0.1:{p}" for p in ports],
             "--cluster-replicas", "0", "--cluster-yes"],
            check=True, capture_output=True, timeout=30,
        )  # fmt: skip
        wait_cluster_ok(ports[0])
        yield f"redis+cluster://127.0.0.1:{ports[0]}/0"
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()
        shutil.rmtree(root, ignore_errors=True)


def wait_ping(port: int) -> None:
    import time

    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        out = subprocess.run(
            ["redis-cli", "-p", str(port), "ping"], capture_output=True, text=True, check=False
        )
        if out.stdout.strip() == "PONG":
            return
        time.sleep(0.05)
    raise AssertionError(f"redis-server on {port} did not start")


def wait_cluster_ok(port: int) -> None:
    import time

    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        out = subprocess.run(
            ["redis-cli", "-p", str(port), "cluster", "info"],
            capture_output=True,
            text=True,
            check=False,
        )
        if "cluster_state:ok" in out.stdout:
            return
        time.sleep(0.1)
    raise AssertionError("cluster did not reach cluster_state:ok")


@pytest.mark.promise(12)
async def test_jobs_over_three_partitions_run_on_a_cluster(cluster_url, registry, worker_factory):
    settings = make_settings(cluster_url, PARTITIONS_TEST_WORK=3)
    assert settings.redis_cluster
    redis = connect(settings.redis_url.reveal(), cluster=True)
    try:
        await redis.delete("test:runs")
        client = Client(redis, registry, settings)
        reqs = [EnqueueRequest(name="test.work", payload={"n": i}) for i in range(90)]
        assert all(r.created for r in await client.enqueue_many(reqs))
        later = await client.enqueue("test.work", {"n": 999}, id="later-999", delay_s=0.3)
        assert later.created
        async with worker_factory(settings, registry, "test.work"):
            await wait_until(lambda: _runs(redis, 91), timeout_s=15, what="91 runs on the cluster")
        assert not (await client.enqueue("test.work", {"n": 999}, id=later.id)).created
    finally:
        await redis.aclose()


async def _runs(redis, n: int) -> bool:
    return await redis.llen("test:runs") >= n
