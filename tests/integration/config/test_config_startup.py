"""`python -m tgworkers run`: a bad value stops start-up (exit 2, one line first);
a `CONFIG_FILE` is polled and applied by the real command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from tests.support.processes import ROOT, start_worker
from tests.support.wait import wait_until_sync

RSA_JWK = json.dumps({"kty": "RSA", "n": "TOPSECRET-modulus", "e": "AQAB", "d": "TOPSECRET-d"})

BAD_STARTS = [
    ({"BACKOFF_DEFAULT_MS": "soon"}, "BACKOFF_DEFAULT_MS: expected an integer, got 'soon'"),
    ({"PORT": "-1"}, "PORT: expected an integer between 0 and 65535, got -1"),
    ({"PROCESSORS": "test.work,nope"}, "PROCESSORS: unknown processor 'nope'"),
    ({"CRON_TEST_TICK": "61 * * * *"}, "CRON_TEST_TICK: "),
    ({"SERVICE_JWT_PRIVATE_JWK": RSA_JWK}, "SERVICE_JWT_PRIVATE_JWK: expected a private Ed25519"),
    ({"REDIS_URL": "http://user:TOPSECRET@h:6379"}, "REDIS_URL: expected redis://"),
    ({"CONCURRENCY_NOPE": "2"}, "CONCURRENCY_NOPE: no processor NOPE; known: "),
    ({"SCHEDULES_TZ": "Nowhere/City"}, "SCHEDULES_TZ: expected an IANA time zone"),
    ({"CONFIG_URL": "http://c/x", "CONFIG_FILE": "c.json"}, "CONFIG_FILE: set either"),
]


@pytest.mark.parametrize(("env", "start"), BAD_STARTS, ids=[next(iter(b[0])) for b in BAD_STARTS])
def test_bad_value_exits_2_with_one_line_naming_the_variable_before_any_output(
    env: dict[str, str], start: str, tmp_path: Path
) -> None:
    args = ["run", "--app", "tests.support.jobs:PROCESSORS"]
    if "PROCESSORS" not in env:
        args += ["--processors", "test.work"]
    clean = {"PATH": os.environ["PATH"], "PYTHONPATH": str(ROOT), "HOME": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "tgworkers", *args],
        cwd=tmp_path, env={**clean, **env}, capture_output=True, text=True, timeout=60,
        check=False,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"tgworkers: {start}"), lines[0]
    assert "TOPSECRET" not in done.stderr


def test_run_polls_config_file_and_applies_it(redis_url: str, tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"CONCURRENCY_TEST_WORK": 3, "version": "file-v1"}))
    worker = start_worker(
        redis_url, processors="test.work",
        env={"CONFIG_FILE": str(path), "CONFIG_POLL_S": "0.2"},
    )  # fmt: skip
    try:
        wait_until_sync(lambda: "config.applied" in worker.log(), timeout_s=15, what="applied")
        applied = next(
            json.loads(line) for line in worker.log().splitlines() if "config.applied" in line
        )
        assert applied["version"] == "file-v1"
        assert applied["changes"] == {"overrides.TEST_WORK": [None, {"concurrency": 3}]}
        worker.terminate()
        assert worker.wait(30) == 0
    finally:
        worker.close()
