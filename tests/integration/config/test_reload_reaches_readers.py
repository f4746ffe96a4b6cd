"""A hot reload reaches every reader of the settings, not only the worker's loops.

Run as a user runs it: `python -m tgworkers run` with `PORT` and `CONFIG_FILE`; the
document is changed to pause a queue and move a schedule, and the admin API, the
dashboard and the schedules view (all built once at start) must show the new values.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import httpx
from tests.support.processes import WorkerProcess, start_worker
from tests.support.redis_server import free_port
from tests.support.wait import wait_until_sync

TOKEN = "reload-readers-admin-token-0123456789"  # noqa: S105 - a test value
ADMIN = {"Authorization": f"Bearer {TOKEN}"}
MOVED_CRON = "0 30 4 * * *"  # the schedule's new expression (seconds-first 6-field form)


def _applied(worker: WorkerProcess, version: str) -> bool:
    for line in worker.log().splitlines():
        if '"config.applied"' in line and json.loads(line).get("version") == version:
            return True
    return False


def _get(port: int, path: str) -> httpx.Response:
    return httpx.get(f"http://127.0.0.1:{port}{path}", headers=ADMIN, timeout=5)


def _queue(port: int, name: str) -> dict[str, Any]:
    doc = _get(port, "/admin/v1/queues").json()
    return next(q for q in doc["queues"] if q["name"] == name)


def _console(port: int) -> httpx.Client:
    """A console session, signed in with the admin token as an operator would."""
    console = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5)
    login = console.post("/ui/login", data={"token": TOKEN, "next": "/ui/"})
    assert login.status_code == httpx.codes.SEE_OTHER, login.text
    return console


def _ready(port: int) -> bool:
    try:
        return _get(port, "/readyz").status_code == httpx.codes.OK
    except httpx.TransportError:
        return False


def test_reload_that_pauses_a_queue_shows_in_the_admin_api_console_and_schedules(
    redis_url: str, tmp_path: Path
) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"version": "v1"}))
    port = free_port()
    env = {"CONFIG_FILE": str(path), "CONFIG_POLL_S": "0.2", "PORT": str(port),
           "ADMIN_TOKEN": TOKEN}  # fmt: skip
    worker = start_worker(redis_url, processors="test.work", env=env)
    try:
        wait_until_sync(lambda: _ready(port), timeout_s=30, what="HTTP server ready")
        assert _queue(port, "test.work")["paused"] is False
        before = _get(port, "/admin/v1/schedules").json()["schedules"]
        assert [s["expression"] for s in before if s["name"] == "test.tick"] == ["1"]
        with contextlib.closing(_console(port)) as console:
            assert 'class="badge paused">paused' not in console.get("/ui/queues/test.work").text

        document = {"version": "v2", "PAUSED_QUEUES": "test.work", "CRON_TEST_TICK": MOVED_CRON}
        path.write_text(json.dumps(document))
        wait_until_sync(lambda: _applied(worker, "v2"), timeout_s=15, what="v2 applied")

        assert _queue(port, "test.work")["paused"] is True
        assert _queue(port, "test.work")["pausedBy"] == ["configuration"]
        with contextlib.closing(_console(port)) as console:
            queue_page = console.get("/ui/queues/test.work")
            assert queue_page.status_code == httpx.codes.OK
            assert ">paused by configuration<" in queue_page.text
            assert MOVED_CRON in console.get("/ui/schedules").text
        after = _get(port, "/admin/v1/schedules").json()["schedules"]
        assert [s["expression"] for s in after if s["name"] == "test.tick"] == [MOVED_CRON]
        worker.terminate()
        assert worker.wait(30) == 0
    finally:
        worker.close()
