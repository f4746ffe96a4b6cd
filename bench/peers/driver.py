"""Runs one workload against one system: subprocesses, the start barrier, the measurement.

Two private redis-servers: the one under test, and a control one for the harness (the
probe's counters, samples and the `bench:go` barrier), so the system's Redis CPU and
command counts hold its own traffic only. Both are flushed before every run. Subprocesses
run in a scratch directory with the repository on PYTHONPATH, so a baseline tree put before
it (`BENCH_TGWORKERS_BASELINE`) is what `import tgworkers` finds.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import redis

from bench.peers import probe
from bench.peers.cost import Cost, Meter

ROOT = Path(__file__).resolve().parents[2]


class RunFailedError(RuntimeError):
    """A run that did not finish (a process died or a deadline passed); the table says so."""


@dataclass
class Drain:
    rate: float
    worker: Cost


@dataclass
class Enqueue:
    rate: float
    redis: Cost  # process_us here is the producer's own CPU per job


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


class Driver:
    def __init__(self, url: str, ctl_url: str) -> None:
        self.url, self.ctl_url = url, ctl_url
        self.r = redis.Redis.from_url(url)
        self.ctl = redis.Redis.from_url(ctl_url)
        self.logs = Path(tempfile.mkdtemp(prefix="bench-peers-"))

    def _env(self, first: str = "") -> dict[str, str]:
        return {
            **os.environ,
            "PYTHONPATH": f"{first}:{ROOT}" if first else str(ROOT),
            "BENCH_REDIS_URL": self.url,
            probe.CTL_URL_ENV: self.ctl_url,
        }

    def _reset(self) -> None:
        self.r.flushall()
        self.ctl.flushall()

    def _worker(self, module: str, i: int, python: str, path: str) -> subprocess.Popen[bytes]:
        log = (self.logs / f"{module.rsplit('.', 1)[1]}-{i}.log").open("wb")
        return subprocess.Popen(
            [python, "-m", module, "work", "--concurrency", "100"],
            cwd=self.logs, env=self._env(path), stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip

    def _produce(self, module: str, python: str, path: str, *args: str) -> dict[str, float]:
        done = subprocess.run(
            [python, "-m", module, "produce", *args], timeout=300,
            cwd=self.logs, env=self._env(path), capture_output=True, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            tail = done.stderr.decode(errors="replace").strip().splitlines()[-1:]
            raise RunFailedError(f"producer failed: {' '.join(tail)}")
        result: dict[str, float] = json.loads(done.stdout.decode().strip().splitlines()[-1])
        return result

    def _progress(self) -> tuple[int, float]:
        count, last = 0, 0.0
        for v in self.ctl.hvals(probe.PROG_KEY):
            n, t = v.split()
            count, last = count + int(n), max(last, float(t))
        return count, last

    def _wait(
        self, what: str, ok: object, workers: list[subprocess.Popen[bytes]], s: float
    ) -> None:
        deadline = time.monotonic() + s
        while not ok():  # type: ignore[operator]
            if any(w.poll() is not None for w in workers):
                raise RunFailedError(f"a worker exited while waiting for {what}")
            if time.monotonic() > deadline:
                raise RunFailedError(f"no {what} within {s:.0f} s")
            time.sleep(0.01)

    @staticmethod
    def _stop(workers: list[subprocess.Popen[bytes]]) -> None:
        for w in workers:
            w.kill()
            w.wait(10)

    def drain(
        self, module: str, processes: int, n: int, python: str = sys.executable, path: str = ""
    ) -> tuple[Drain, Enqueue]:
        """Enqueue n no-op jobs (no worker running), then drain them from the barrier on."""
        self._reset()
        meter = Meter(self.r, [])
        produced = self._produce(module, python, path, "--mode", "bulk", "--n", str(n))
        enqueue_cost = meter.read(n)
        enqueue_cost.process_us = produced["cpu_us_per_job"]
        workers = [self._worker(module, i, python, path) for i in range(processes)]
        try:
            self._wait("start barrier", lambda: self.ctl.hlen(probe.READY_KEY) >= processes,
                       workers, 180)  # fmt: skip
            meter = Meter(self.r, [w.pid for w in workers])
            go = time.time()
            self.ctl.set(probe.GO_KEY, go)
            self._wait(f"{n} jobs run", lambda: self._progress()[0] >= n, workers, 600)
            cost = meter.read(n)
            last = self._progress()[1]
        finally:
            self._stop(workers)
        return Drain(n / (last - go), cost), Enqueue(produced["rate"], enqueue_cost)

    def lateness(
        self,
        module: str,
        n: int,
        *,
        delay_s: float,
        python: str = sys.executable,
        path: str = "",
        rate: float = 500.0,
    ) -> list[float]:
        """Jobs sent one at a time at `rate`/s; each records start - enqueue time (or - due time)."""
        self._reset()
        self.ctl.set(probe.GO_KEY, time.time())
        workers = [self._worker(module, 0, python, path)]
        try:
            args = ("--mode", "paced", "--n", str(n), "--delay", str(delay_s), "--rate", str(rate))
            self._produce(module, python, path, *args)
            self._wait(f"{n} latency samples", lambda: self.ctl.llen(probe.SAMPLES_KEY) >= n,
                       workers, 120)  # fmt: skip
        finally:
            self._stop(workers)
        return [float(x) for x in self.ctl.lrange(probe.SAMPLES_KEY, 0, -1)]


def summary(values: list[float]) -> tuple[float, float, float]:
    return statistics.median(values), min(values), max(values)
