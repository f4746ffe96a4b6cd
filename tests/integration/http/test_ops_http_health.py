"""Health endpoints, the server inside `run`, and pause reaching every worker (promise 9)."""

from __future__ import annotations

import os
import signal
import socket
import time

import httpx
import pytest
from redis import exceptions as rex
from tests.support.admin_http import ADMIN, admin_client, ops_settings
from tests.support.engine_state import queue_state, runs
from tests.support.processes import start_worker
from tests.support.wait import wait_until

from tgworkers.engine.client import EnqueueRequest
from tgworkers.engine.runtime.worker import Worker


async def test_readyz_is_503_until_started_and_while_redis_is_down_then_200(
    redis_url, registry, worker_factory
):
    settings = ops_settings(redis_url)
    idle = Worker(settings=settings, registry=registry, processors=registry.select("test.work"),
                  consumer="not-started")  # fmt: skip
    async with admin_client(settings, registry, idle) as http:
        before = await http.get("/readyz")
    await idle.redis.aclose()
    await idle.blocking.aclose()
    assert before.status_code == 503 and before.json() == {"status": "starting"}
    async with (
        worker_factory(settings, registry, "test.work") as worker,
        admin_client(settings, registry, worker) as http,
    ):
        ready = await http.get("/readyz")
        worker.health.failed(rex.ConnectionError("refused"))
        down = await http.get("/readyz")
        alive_during_outage = await http.get("/healthz")
        worker.health.ok()
    assert ready.status_code == 200 and ready.json() == {"status": "ready"}
    assert down.status_code == 503 and down.json() == {"status": "redis_unreachable"}
    assert alive_during_outage.status_code == 200


async def test_healthz_reports_a_runtime_that_stopped_making_progress(redis_url, registry):
    settings = ops_settings(redis_url)
    worker = Worker(settings=settings, registry=registry, processors=registry.select("test.work"),
                    consumer="stalled")  # fmt: skip
    worker.started.set()  # as if running, but no loop moves: the stamps only age
    async with admin_client(settings, registry, worker) as http:
        fresh = await http.get("/healthz")
        worker.runtime("test.work").last_progress = time.monotonic() - 3600
        stalled = await http.get("/healthz")
        worker.runtime("test.work").set_paused(True)
        paused = await http.get("/healthz")
    await worker.redis.aclose()
    await worker.blocking.aclose()
    assert fresh.status_code == 200 and fresh.json()["status"] == "ok"
    assert stalled.status_code == 503 and stalled.json()["stalled"] == ["test.work"]
    assert paused.status_code == 200  # a paused queue is idle on purpose


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_run_serves_health_and_admin_on_port_and_stops_with_the_worker(redis_url):
    port = _free_port()
    proc = start_worker(redis_url, processors="test.work",
                        env={"PORT": str(port), "ADMIN_TOKEN": "run-token-123456-for-tests"})  # fmt: skip
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:

            async def ready() -> bool:
                try:
                    return (await http.get("/readyz")).status_code == 200
                except httpx.TransportError:
                    return False

            await wait_until(ready, timeout_s=10, what="readyz 200 from run")
            assert (await http.get("/healthz")).status_code == 200
            headers = {"Authorization": "Bearer run-token-123456-for-tests"}

            async def consumers() -> int:
                queues = await http.get("/admin/v1/queues", headers=headers)
                assert queues.status_code == 200
                return next(
                    q["consumers"] for q in queues.json()["queues"] if q["name"] == "test.work"
                )

            assert (
                await wait_until(consumers, timeout_s=5, what="the worker as a live consumer") == 1
            )
        proc.signal(signal.SIGTERM)
        assert proc.wait(timeout_s=15) == 0
        assert "run-token-123456" not in proc.log()
    finally:
        proc.close()


@pytest.mark.promise(9)
async def test_pause_via_admin_reaches_three_worker_processes_under_load_within_a_second(
    redis, redis_url, registry, client
):
    settings = ops_settings(redis_url)
    workers = [start_worker(redis_url, processors="test.work") for _ in range(3)]
    try:
        await client.enqueue_many(
            [
                EnqueueRequest(name="test.work", payload={"n": i, "sleep_ms": 20})
                for i in range(6000)
            ]
        )
        await wait_until(lambda: _pids_running(redis, 3), timeout_s=15, what="3 workers busy")
        async with admin_client(settings, registry) as http:
            paused_ms = int(time.time() * 1000)
            r = await http.post("/admin/v1/queues/test.work/pause", headers=ADMIN)
        assert r.status_code == 200
        await wait_until(lambda: _nothing_in_flight(redis), timeout_s=5, what="in-flight done")
        late = [x for x in await runs(redis) if x.start_ms > paused_ms + 1000]
        assert late == [], f"{len(late)} jobs started over 1 s after the pause"
        assert (await queue_state(redis))["ready"] > 0  # jobs were left to take
    finally:
        for w in workers:
            w.close()


async def _pids_running(redis, n: int) -> bool:
    return len({r.pid for r in await runs(redis)} - {os.getpid()}) >= n


async def _nothing_in_flight(redis) -> bool:
    return (await queue_state(redis))["pending"] == 0
