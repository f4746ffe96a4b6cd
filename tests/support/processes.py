"""Start `python -m tgworkers run` as a real subprocess and signal it."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


class WorkerProcess:
    """A worker subprocess with its log captured to a file."""

    def __init__(self, args: list[str], env: Mapping[str, str]):
        self.log_path = Path(tempfile.mkstemp(prefix="tgw-worker-", suffix=".log")[1])
        full_env = {**os.environ, "PYTHONPATH": str(ROOT), "LOG_FORMAT": "json", **env}
        with self.log_path.open("wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "tgworkers", *args],
                cwd=ROOT, env=full_env, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip

    @property
    def pid(self) -> int:
        return self.proc.pid

    def signal(self, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.proc.pid, sig)

    def kill(self) -> None:
        self.signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def terminate(self) -> None:
        self.signal(signal.SIGTERM)

    def wait(self, timeout_s: float = 30) -> int:
        return self.proc.wait(timeout=timeout_s)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def close(self) -> None:
        if self.alive():
            self.signal(signal.SIGCONT)
            self.kill()
        self.log_path.unlink(missing_ok=True)


def start_worker(
    redis_url: str,
    *,
    processors: str,
    app: str = "tests.support.jobs:PROCESSORS",
    env: Mapping[str, str] | None = None,
) -> WorkerProcess:
    base = {"REDIS_URL": redis_url, "LOG_LEVEL": "info"}
    return WorkerProcess(["run", "--processors", processors, "--app", app], {**base, **(env or {})})
