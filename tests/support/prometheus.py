"""Prometheus's own tools for the tests: `promtool` and a private `prometheus` server.

Both come from Debian's `prometheus` package, which scripts/setup-env installs with apt
when it is missing and the user is root. A test that needs them skips, naming what to
install, only outside CI; in CI (`CI` set) a missing binary fails the test instead.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import urllib.parse
import urllib.request
from http import HTTPStatus
from pathlib import Path
from typing import Any

import pytest

from tgworkers.devstack.redis import free_port

ROOT = Path(__file__).resolve().parents[2]
RULE_FILES = sorted((ROOT / "helm/tgworkers/alerts").glob("*.yaml"))
RULE_TESTS = sorted((ROOT / "tests/prometheus/rules").glob("*.test.yaml"))
INSTALL_HINT = "install Debian's prometheus package (scripts/setup-env does, as root)"


def binary(name: str) -> str:
    """The path of `promtool` or `prometheus`; skips (fails in CI) when it is missing."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} not found on PATH: {INSTALL_HINT}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


def promtool(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [binary("promtool"), *map(str, args)],
        capture_output=True, text=True, timeout=60, cwd=cwd, check=False,
    )  # fmt: skip


def api(base_url: str, path: str, **params: str) -> Any:
    """GET one Prometheus HTTP API endpoint; its `data` (raises on an error status)."""
    url = f"{base_url}{path}?{urllib.parse.urlencode(params)}"
    with urllib.request.urlopen(url, timeout=5) as answer:  # noqa: S310 - our own loopback server
        body = json.load(answer)
    assert body["status"] == "success", body
    return body["data"]


class PrometheusServer:
    """A private `prometheus`: free port, its own config and data dir, 1 s scrapes and rules."""

    def __init__(self, workdir: Path, targets: list[str], rule_files: list[Path]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(p) for p in rule_files],
            "scrape_configs": [{"job_name": "tgworkers", "static_configs": [{"targets": targets}]}],
        }
        (workdir / "prometheus.yml").write_text(json.dumps(config))  # JSON is YAML
        self.log_path = workdir / "prometheus.log"
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                [binary("prometheus"), f"--config.file={workdir / 'prometheus.yml'}",
                 f"--storage.tsdb.path={workdir / 'data'}", f"--web.listen-address=127.0.0.1:{self.port}",
                 "--log.level=warn"],
                stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip

    def ready(self) -> bool:
        assert self.proc.poll() is None, f"prometheus exited:\n{self.log()}"
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as answer:  # noqa: S310
                return bool(answer.status == HTTPStatus.OK)
        except OSError:
            return False

    def query(self, promql: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = api(self.url, "/api/v1/query", query=promql)["result"]
        return result

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
