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
from pathlib import Path
from typing import Any

import pytest

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
