"""The first CONFIG_FILE document holds from the first job (a real `run`).

A limit that protects a peer (`CONCURRENCY_<P>: 1`) must be in force before any
processor reads; when the document cannot be read within `CONFIG_WAIT_S` the worker
starts from the environment and `/readyz` says `config_pending` until one applies.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import httpx
from redis.asyncio import Redis
from tests.support.config_server import ConfigServer
from tests.support.engine_state import idle, runs
from tests.support.processes import start_worker
from tests.support.redis_server import free_port
from tests.support.wait import wait_until, wait_until_sync

from tgworkers.engine.client import Client, EnqueueRequest

JOBS = 20


async def test_a_config_file_concurrency_of_one_holds_from_the_first_job(
    redis_url: str, redis: Redis, client: Client, tmp_path: Path
) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"CONCURRENCY_TEST_WORK": 1, "version": "one-at-a-time"}))
    due = [EnqueueRequest(name="test.work", payload={"n": i, "sleep_ms": 40}) for i in range(JOBS)]
    await client.enqueue_many(due)  # all due before the worker starts
    worker = start_worker(redis_url, processors="test.work",
                          env={"CONFIG_FILE": str(path), "CONFIG_POLL_S": "0.2"})  # fmt: skip
    try:
        await wait_until(lambda: idle(redis), timeout_s=60, what="every job done")
        done = sorted(await runs(redis), key=lambda r: r.start_ms)
        assert sorted(r.n for r in done) == list(range(JOBS))
        overlaps = [(a.n, b.n) for a, b in itertools.pairwise(done) if b.start_ms < a.end_ms]
        assert overlaps == [], f"runs overlapped under CONCURRENCY_TEST_WORK=1: {overlaps}"
        log = worker.log()
        assert log.index('"config.applied"') < log.index('"worker.started"')
        worker.terminate()
        assert worker.wait(30) == 0
    finally:
        worker.close()


def _readyz(port: int) -> tuple[int, dict[str, object]] | None:
    try:
        answer = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5)
    except httpx.TransportError:
        return None
    return answer.status_code, answer.json()


def test_without_a_document_in_time_it_starts_from_the_environment_and_readyz_says_so(
    redis_url: str, tmp_path: Path
) -> None:
    path = tmp_path / "late.json"  # not there yet
    port = free_port()
    env = {"CONFIG_FILE": str(path), "CONFIG_POLL_S": "0.2", "CONFIG_WAIT_S": "0.5",
           "PORT": str(port)}  # fmt: skip
    worker = start_worker(redis_url, processors="test.work", env=env)
    try:
        pending = wait_until_sync(
            lambda: (r := _readyz(port)) is not None and r[1].get("status") != "starting" and r,
            timeout_s=30, what="readyz answers past start-up",
        )  # fmt: skip
        assert pending[0] == httpx.codes.SERVICE_UNAVAILABLE
        assert pending[1]["status"] == "config_pending"
        assert "config.started_without_document" in worker.log()

        path.write_text(json.dumps({"CONCURRENCY_TEST_WORK": 2}))
        ready = wait_until_sync(
            lambda: (r := _readyz(port)) is not None and r[0] == httpx.codes.OK and r,
            timeout_s=15, what="ready once the document applied",
        )  # fmt: skip
        assert ready[1]["status"] == "ready"
        worker.terminate()
        assert worker.wait(30) == 0
    finally:
        worker.close()


def _events(worker_log: str, name: str) -> list[dict[str, object]]:
    found = []
    for line in worker_log.splitlines():
        if f'"{name}"' in line:
            event: dict[str, object] = json.loads(line)
            found.append(event)
    return found


def test_a_config_url_document_is_applied_before_start_and_not_twice(redis_url: str) -> None:
    server = ConfigServer({"CONCURRENCY_TEST_WORK": 2, "version": "url-v1"})
    worker = start_worker(redis_url, processors="test.work",
                          env={"CONFIG_URL": server.url, "CONFIG_POLL_S": "0.2"})  # fmt: skip
    try:
        wait_until_sync(lambda: server.not_modified >= 2, timeout_s=30, what="reloader polling")
        log = worker.log()
        applied = _events(log, "config.applied")
        assert [e["version"] for e in applied] == ["url-v1"]  # once, before start
        assert applied[0]["before_start"] is True
        assert log.index('"config.applied"') < log.index('"worker.started"')
        worker.terminate()
        assert worker.wait(30) == 0
    finally:
        worker.close()
        server.stop()
