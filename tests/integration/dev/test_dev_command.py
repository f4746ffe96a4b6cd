"""`python -m tgworkers dev` as a newcomer runs it: jobs flow, one dead-letters, Ctrl-C cleans up.

The command runs as a real subprocess on a pipe (so it prints plain lines). The
test reads the Redis URL, redis-server pid and temp dir it reports, checks the
queues with the very `stats` command it prints, then sends SIGINT and checks that
nothing it started is left: no process, no directory.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from tests.support.processes import ROOT
from tests.support.redis_server import free_port
from tests.support.wait import wait_until_sync

PRIVATE = re.compile(r"redis\s+(redis://\S+)\s+\(private redis-server pid (\d+), dir (\S+)\)")
STATS = re.compile(r"^\s+stats\s+(.+)$", re.MULTILINE)
STATUS = re.compile(r"^dev \d+s \|", re.MULTILINE)
CONSOLE = re.compile(r"console\s+(http://127\.0\.0\.1:\d+/ui/login/link\?t=\S+)")


class DevProcess:
    """`python -m tgworkers dev` with its stdout and stderr in files."""

    def __init__(self, tmp_path: Path, env: dict[str, str]) -> None:
        self.out = tmp_path / "dev.out"
        self.err = tmp_path / "dev.err"
        with self.out.open("wb") as out, self.err.open("wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "tgworkers", "dev", "--tick", "1"],
                cwd=tmp_path, env=env, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
            )  # fmt: skip

    def stdout(self) -> str:
        return self.out.read_text(errors="replace")

    def stderr(self) -> str:
        return self.err.read_text(errors="replace")

    def interrupt(self, timeout_s: float = 30) -> int:
        self.proc.send_signal(signal.SIGINT)
        return self.proc.wait(timeout=timeout_s)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


def clean_env(**extra: str) -> dict[str, str]:
    """The machine's environment without any Redis or tgworkers settings of the caller."""
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR")}
    return {**keep, "PYTHONPATH": str(ROOT), **extra}


@pytest.fixture
def dev(tmp_path: Path) -> Iterator[object]:
    started: list[DevProcess] = []

    def start(**env: str) -> DevProcess:
        started.append(DevProcess(tmp_path, clean_env(**env)))
        return started[-1]

    yield start
    for process in started:
        process.close()


def stats_json(command: str) -> dict[str, dict[str, int]]:
    """Run the `stats` command `dev` printed, with `--json` instead of `--watch`."""
    words = shlex.split(command)
    env = dict(w.split("=", 1) for w in words if re.match(r"^[A-Z_]+=", w))
    argv = [w for w in words if not re.match(r"^[A-Z_]+=", w)]
    argv[argv.index("--watch")] = "--json"
    done = subprocess.run(argv, env=clean_env(**env), capture_output=True, text=True,
                          timeout=30, check=True)  # fmt: skip
    return {q["name"]: q for q in json.loads(done.stdout)["queues"]}


def busy_enough(command: str) -> dict[str, dict[str, int]] | None:
    """The queues once four processors have finished jobs and one job is dead-lettered."""
    queues = stats_json(command)
    completed = [name for name, q in queues.items() if q["processed"] > 0]
    dead = [name for name, q in queues.items() if q["dlq"] > 0]
    return queues if len(completed) >= 4 and dead else None


def test_dev_runs_four_processors_dead_letters_one_and_leaves_nothing_on_ctrl_c(dev):
    process = dev()
    banner = wait_until_sync(lambda: PRIVATE.search(process.stdout()) and process.stdout(),
                             timeout_s=30, what="the dev banner")  # fmt: skip
    url, pid, data_dir = PRIVATE.search(banner).groups()
    command = STATS.search(banner).group(1)
    assert f"REDIS_URL={url}" in command and "QUEUE_PREFIX=tgwdev" in command
    queues = wait_until_sync(lambda: busy_enough(command), timeout_s=60,
                             what="jobs of four processors done and one in the DLQ")  # fmt: skip
    assert queues["cfb.settle"]["dlq"] >= 1  # the bet PlayHub does not know (404)
    assert process.interrupt() == 0, process.stderr()
    assert not Path(data_dir).exists()
    with pytest.raises(ProcessLookupError):
        os.kill(int(pid), 0)
    port = url.rsplit(":", 1)[1].split("/")[0]
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=True)
    assert not [line for line in ps.stdout.splitlines() if f":{port}" in line]


def test_dev_uses_a_reachable_redis_url_under_its_own_prefix(dev, redis_url):
    process = dev(REDIS_URL=redis_url)
    wait_until_sync(lambda: STATUS.search(process.stdout()), timeout_s=30, what="a status line")
    banner = process.stdout()
    assert "private redis-server" not in banner
    assert "queue prefix tgwdev" in banner
    command = STATS.search(banner).group(1)
    wait_until_sync(lambda: stats_json(f"REDIS_URL={redis_url} {command}")["cfb.settle"]
                    ["processed"], timeout_s=30, what="a bet settled")  # fmt: skip
    link = CONSOLE.search(banner).group(1)
    with httpx.Client(base_url=link.split("/ui/", 1)[0]) as browser:
        signed_in = browser.get(link, follow_redirects=True)
        reused = httpx.get(link)
    assert signed_in.status_code == 200 and 'data-queue="cfb.settle"' in signed_in.text
    assert reused.status_code == 401  # the link works once
    assert process.interrupt() == 0, process.stderr()


def test_dev_without_redis_server_or_redis_url_exits_2_naming_how_to_get_one(tmp_path):
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    env = {**clean_env(), "PATH": str(empty)}  # python by full path; no redis-server anywhere
    done = subprocess.run([sys.executable, "-m", "tgworkers", "dev"], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        "tgworkers: redis-server not found on PATH "
        "(apt-get install -y redis-server, or set REDIS_URL to a running Redis)"
    )
    assert done.stdout == ""


class Collector:
    """An OTLP/HTTP receiver on a loopback port: keeps every export request it is sent."""

    def __init__(self) -> None:
        self.received: list[tuple[str, bytes]] = []
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                received.append((self.path, body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_: object) -> None:  # keep the test output quiet
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def span_names(self) -> set[str]:
        names: set[str] = set()
        for path, body in list(self.received):
            if path == "/v1/traces":
                request = ExportTraceServiceRequest.FromString(body)
                names |= {s.name for r in request.resource_spans for ss in r.scope_spans
                          for s in ss.spans}  # fmt: skip
        return names

    def metric_names(self) -> set[str]:
        names: set[str] = set()
        for path, body in list(self.received):
            if path == "/v1/metrics":
                request = ExportMetricsServiceRequest.FromString(body)
                names |= {m.name for r in request.resource_metrics for sm in r.scope_metrics
                          for m in sm.metrics}  # fmt: skip
        return names

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_dev_exports_telemetry_like_run(dev, redis_url):
    """`dev` goes through the launcher `run` uses: OTLP spans and metrics, and `/metrics`."""
    collector = Collector()
    port = free_port()
    try:
        process = dev(REDIS_URL=redis_url, PORT=str(port),
                      OTEL_EXPORTER_OTLP_ENDPOINT=collector.url,
                      OTEL_METRIC_EXPORT_INTERVAL="500", OTEL_BSP_SCHEDULE_DELAY="200")  # fmt: skip
        wait_until_sync(lambda: "process cfb.settle" in collector.span_names(), timeout_s=60,
                        what="a process span exported over OTLP")  # fmt: skip
        wait_until_sync(lambda: "messaging.process.duration" in collector.metric_names(),
                        timeout_s=30, what="the handler-duration histogram exported")  # fmt: skip
        scrape = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10)
        assert scrape.status_code == 200
        assert "tgworkers_jobs_processed_total" in scrape.text  # the Prometheus reader too
        assert process.interrupt() == 0, process.stderr()
    finally:
        collector.close()
