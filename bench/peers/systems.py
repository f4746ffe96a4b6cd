"""The systems compared: the module that drives each, its package, and what it can run."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import subprocess
import sys
from dataclasses import dataclass, replace
from pathlib import Path


@dataclass(frozen=True)
class System:
    name: str
    module: str
    package: str  # the distribution whose version is reported (and must be installed)
    enqueue_api: str
    latency: bool = True
    delayed: bool = True
    own_venv: str = ""  # a venv of its own when its pins clash with ours (see setup-peers-env)
    python: str = sys.executable
    pythonpath: str = ""  # put first on PYTHONPATH: another tree's `tgworkers` package

    def version(self) -> str:
        if self.pythonpath:
            return Path(self.pythonpath).name
        if self.python == sys.executable:
            return importlib.metadata.version(self.package)
        code = f"import importlib.metadata as m; print(m.version({self.package!r}))"
        return subprocess.check_output([self.python, "-c", code], text=True).strip()


SYSTEMS = (
    System("raw redis-py", "bench.peers.peer_raw", "redis",
           "pipelined XADD, 500 per round trip", latency=False, delayed=False),
    System("tgworkers", "bench.peers.peer_tgworkers", "tgworkers", "Client.enqueue_many"),
    System("dramatiq", "bench.peers.peer_dramatiq", "dramatiq", "send() loop"),
    System("taskiq-redis stream", "bench.peers.peer_taskiq", "taskiq-redis",
           "kiq(), 100 in flight", delayed=False),
    System("saq", "bench.peers.peer_saq", "saq", "enqueue(), 100 in flight"),
    System("streaq", "bench.peers.peer_streaq", "streaq", "enqueue_many, 1,000 per call"),
    System("bullmq", "bench.peers.peer_bullmq", "bullmq", "addBulk, 1,000 per call",
           own_venv=".venv-bullmq"),
)  # fmt: skip

NOT_RUN = {
    "taskiq-redis stream": "delayed: needs a TaskiqScheduler process and a schedule source",
}


def skipped_by_setup(root: Path) -> set[str]:
    """Requirements scripts/setup-peers-env left out because their pins clash with ours."""
    listed = root / ".venv-peers" / "peers-skipped.txt"
    return set(listed.read_text().split()) if listed.exists() else set()


def baseline() -> list[System]:
    """`BENCH_TGWORKERS_BASELINE=DIR` (DIR holds an older `tgworkers/` package, e.g. from
    `git archive REV tgworkers | tar -x -C DIR`): that engine runs too, interleaved with
    this tree's, for a before/after in one run."""
    where = os.environ.get("BENCH_TGWORKERS_BASELINE")
    if not where:
        return []
    return [System("tgworkers baseline", "bench.peers.peer_tgworkers", "tgworkers",
                   "Client.enqueue_many", pythonpath=os.path.abspath(where))]  # fmt: skip


def available(root: Path) -> tuple[list[System], dict[str, str]]:
    """The systems this interpreter can run, and why each other one is skipped."""
    clashes = skipped_by_setup(root)
    usable, skipped = baseline(), {}
    for system in SYSTEMS:
        top = system.package.replace("-", "_")
        own = root / system.own_venv / "bin" / "python" if system.own_venv else None
        if importlib.util.find_spec(top) is not None:
            usable.append(system)
        elif own is not None and own.exists():
            usable.append(replace(system, python=os.fspath(own)))
        elif any(req.split("[")[0].split(">")[0] == system.package for req in clashes):
            skipped[system.name] = (
                f"its pins clash with tgworkers' and {system.own_venv or 'no own venv'} is missing"
            )
        else:
            skipped[system.name] = "not installed: run scripts/setup-peers-env"
    return usable, skipped
