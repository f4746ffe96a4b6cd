"""`python -m bench.peers.profile`: the cost of a no-op drain, counted where timing is noise.

The 1-process drain of `bench.peers` (same producer, probe and barrier), with the worker
run under a tool, measured from the barrier (`bench:go`) to the last job only:

- `--tool callgrind`: the worker under `valgrind --tool=callgrind`; its counters are
  zeroed at go and dumped at the last job (`callgrind_control`), so the figure is the
  worker's **instructions per job**: repeatable to a few tenths of a percent on a shared
  machine, where CPU time per job moves by 15 % between identical runs. Slow (~50x):
  use a few thousand jobs. The dump (`--out`) opens in `callgrind_annotate`/kcachegrind.
- `--tool py-spy`: `py-spy record` attached to the worker at go and stopped at the last
  job (`--out x.svg` for a flame graph, `x.txt` for py-spy's raw collapsed stacks).
- `--tool none`: worker and Redis CPU per job and commands per job, as `bench.peers.ab`.

`--tree DIR` measures another `tgworkers/` (`git archive REV tgworkers | tar -x -C DIR`).
Prints one line; never asserts.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.peers import probe
from bench.peers.cost import Meter
from bench.peers.driver import Driver
from tgworkers.devstack.redis import RedisServer

MODULE = "bench.peers.peer_tgworkers"


def _callgrind_total(out: Path) -> tuple[int, Path]:
    """Instructions (Ir) of the last callgrind dump written under `out`'s prefix, and it."""
    dumps = sorted(out.parent.glob(out.name + "*"), key=lambda p: p.stat().st_mtime)
    text = dumps[-1].read_text(errors="replace")
    found = re.findall(r"^(?:summary|totals):\s+(\d+)", text, flags=re.MULTILINE)
    return int(found[-1]), dumps[-1]


def _callgrind_control(*args: str) -> None:
    subprocess.run(["callgrind_control", *args], check=True, capture_output=True, timeout=120)


def _attach(tool: str, pid: int, out: Path | None, pyspy: str) -> subprocess.Popen[bytes] | None:
    """Start counting at go: zero callgrind's counters, or attach py-spy."""
    if tool == "callgrind":
        _callgrind_control("-z", str(pid))
    if tool != "py-spy":
        return None
    if out is None:
        raise SystemExit("--tool py-spy needs --out (.svg or .txt)")
    fmt = "flamegraph" if out.suffix == ".svg" else "raw"
    args = ["record", "--pid", str(pid), "--rate", "500", "--format", fmt, "--output", str(out)]
    spy = subprocess.Popen([pyspy, *args, "--gil"])  # only samples holding the GIL: no idle
    time.sleep(1.0)  # attached before the first job
    return spy


def _idle_rate(pid: int, out: Path, idle_s: float) -> float:
    """Instructions per second of the worker's periodic loops, idle after the drain.

    Under callgrind a drain takes tens of seconds, more on a loaded machine, and the
    periodic loops (leases, recovery, promoter, control, heartbeat) run by the clock: their
    share per job moves with the drain's length unless taken out.
    """
    if idle_s <= 0:
        return 0.0
    _callgrind_control("-z", str(pid))
    time.sleep(idle_s)
    _callgrind_control("-d", str(pid))
    return _callgrind_total(out)[0] / idle_s


def _counted(
    pid: int, cg_out: Path, out: Path | None, idle_s: float, drain_s: float
) -> tuple[int, float, float]:
    """The drain's instructions (its dump copied to `out`), the idle rate, the drain's time."""
    total, dump = _callgrind_total(cg_out)
    if out is not None:
        shutil.copy(dump, out)
    return total, _idle_rate(pid, cg_out, idle_s), drain_s


def _detach(tool: str, pid: int, spy: subprocess.Popen[bytes] | None) -> None:
    if tool == "callgrind":
        _callgrind_control("-d", str(pid))
    if spy is not None:
        spy.send_signal(signal.SIGINT)
        spy.wait(120)


def run(tool: str, jobs: int, tree: str, out: Path | None, pyspy: str, idle_s: float) -> str:
    servers = [RedisServer(), RedisServer()]
    scratch = Path(tempfile.mkdtemp(prefix="bench-profile-"))
    try:
        for server in servers:
            server.start()
        driver = Driver(servers[0].url, servers[1].url)
        driver._reset()
        produced = driver._produce(MODULE, sys.executable, tree, "--mode", "bulk", "--n", str(jobs))
        prefix: list[str] = []
        cg_out = scratch / "callgrind.out"
        if tool == "callgrind":
            prefix = ["valgrind", "--tool=callgrind", "--trace-children=yes",
                      f"--callgrind-out-file={cg_out}.%p", "--dump-instr=no"]  # fmt: skip
        log = (scratch / "worker.log").open("wb")
        worker = subprocess.Popen(
            [*prefix, sys.executable, "-m", MODULE, "work", "--concurrency", "100"],
            cwd=scratch, env=driver._env(tree), stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            ready = lambda: driver.ctl.hlen(probe.READY_KEY) >= 1  # noqa: E731
            driver._wait("start barrier", ready, [worker], 900)
            spy = _attach(tool, worker.pid, out, pyspy)
            meter = Meter(driver.r, [worker.pid])
            go = time.time()
            driver.ctl.set(probe.GO_KEY, go)
            done = lambda: driver._progress()[0] >= jobs  # noqa: E731
            driver._wait(f"{jobs} jobs run", done, [worker], 3600)
            cost = meter.read(jobs)
            rate = jobs / (driver._progress()[1] - go)
            _detach(tool, worker.pid, spy)
            counted = _counted(worker.pid, cg_out, out, idle_s, jobs / rate) if prefix else None
        finally:
            worker.kill()
            worker.wait(30)
        line = (f"{tool}: {jobs} jobs, worker {cost.process_us:.1f} us/job, Redis"
                f" {cost.redis_us:.1f} us/job, {cost.commands:.3f} commands/job"
                f" ({', '.join(f'{n} {c:.3f}' for n, c in cost.top)}), {rate:,.0f} jobs/s,"
                f" enqueue {produced['rate']:,.0f} jobs/s")  # fmt: skip
        if counted is not None:
            total, idle_per_s, drain_s = counted
            line += (f"; {total / jobs:,.0f} instructions/job (worker, callgrind), less the idle"
                     f" loops' {idle_per_s:,.0f}/s over the {drain_s:.1f} s drain:"
                     f" {(total - idle_per_s * drain_s) / jobs:,.0f}")  # fmt: skip
        return line
    finally:
        for server in servers:
            server.close()
        shutil.rmtree(scratch, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.peers.profile")
    parser.add_argument("--tool", choices=("none", "callgrind", "py-spy"), default="none")
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--tree", default="", help="a directory holding another tgworkers/")
    parser.add_argument("--out", type=Path, help="callgrind dump, or py-spy .svg/.txt")
    parser.add_argument("--idle-s", type=float, default=20.0, help="callgrind: idle rate over")
    parser.add_argument("--py-spy", default=shutil.which("py-spy") or "py-spy")
    args = parser.parse_args()
    tree = os.path.abspath(args.tree) if args.tree else ""
    print(run(args.tool, args.jobs, tree, args.out, args.py_spy, args.idle_s), flush=True)


if __name__ == "__main__":
    main()
