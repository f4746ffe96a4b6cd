"""`python -m bench.peers`: tgworkers, the raw redis-py floor and the peers, one run.

Rounds are interleaved the way research/peer-benchmarks.md did it: in each round every
system's 1-process drain, then every 2-process drain, then pickup latency, then delayed
lateness, and the system order moves by one each round. Prints the tables (median and
min-max over rounds), writes bench/peers/results.png, and then runs the realistic job
(bench/peers/realistic.py). Never asserts. See bench/README.md.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Callable
from pathlib import Path

from bench.peers import report
from bench.peers.driver import ROOT, Driver, RunFailedError, pct
from bench.peers.systems import NOT_RUN, System, available
from tgworkers.devstack.redis import RedisServer

CHART = Path(__file__).with_name("results.png")


class Rounds:
    def __init__(self, d: Driver, c: report.Collector, args: argparse.Namespace) -> None:
        self.d, self.c, self.args = d, c, args

    def attempt(self, system: System, metric: str, run: Callable[[], None]) -> None:
        print(f"  {system.name:22s} {metric:8s}", end=" ", flush=True)
        try:
            run()
            print("ok", flush=True)
        except (RunFailedError, OSError, ValueError) as exc:
            self.c.fail(system.name, metric, str(exc))
            print(f"FAILED: {exc}", flush=True)

    def drain(self, s: System, procs: int) -> None:
        rate, enq = self.d.drain(s.module, procs, self.args.jobs, s.python, s.pythonpath)
        self.c.add(s.name, f"drain{procs}", rate.rate)
        if procs == 1:
            self.c.add(s.name, "enqueue", enq.rate)
            self.c.add_cost(s.name, "enqueue", enq.redis)
            self.c.add_cost(s.name, "drain", rate.worker)
            self.c.add(s.name, "drain_busy", rate.rate * rate.worker.process_us / 1e4)

    def late(self, s: System, key: str, delay_s: float, n: int, rate: float = 500.0) -> None:
        ms = self.d.lateness(
            s.module, n, delay_s=delay_s, python=s.python, path=s.pythonpath, rate=rate
        )
        self.c.add(s.name, f"{key}_p50", pct(ms, 0.5))
        self.c.add(s.name, f"{key}_p99", pct(ms, 0.99))

    def one(self, systems: list[System]) -> None:
        for procs in () if self.args.pickup_only else (1, 2):
            for s in systems:
                self.attempt(s, f"drain{procs}", lambda s=s, p=procs: self.drain(s, p))  # type: ignore[misc]
        for s in (s for s in systems if s.latency):
            self.attempt(s, "lat", lambda s=s: self.late(s, "lat", 0.0, self.args.latency_jobs))  # type: ignore[misc]
        if self.args.fast_rate > 0:  # the same sends, ten times as often: pickup under load
            n, rate = self.args.fast_jobs, self.args.fast_rate
            for s in (s for s in systems if s.latency):
                self.attempt(s, "latfast", lambda s=s: self.late(s, "fast", 0.0, n, rate))  # type: ignore[misc]
        for s in (s for s in systems if s.delayed and not self.args.pickup_only):
            self.attempt(s, "del", lambda s=s: self.late(s, "del", 1.0, self.args.delayed_jobs))  # type: ignore[misc]


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.peers")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=20_000, help="jobs per drain")
    parser.add_argument("--latency-jobs", type=int, default=2_500)
    parser.add_argument("--delayed-jobs", type=int, default=1_000)
    parser.add_argument("--fast-rate", type=float, default=5_000,
                        help="second pickup run's rate, jobs/s (0: skip it)")  # fmt: skip
    parser.add_argument("--fast-jobs", type=int, default=25_000)
    parser.add_argument("--only", default="", help="comma list of system names")
    parser.add_argument("--no-realistic", action="store_true")
    parser.add_argument("--pickup-only", action="store_true",
                        help="only the pickup runs (no drains, delayed or realistic job)")  # fmt: skip
    parser.add_argument("--chart", type=Path, default=CHART, help="where the PNG goes")
    return parser.parse_args()


def _print(
    c: report.Collector, systems: list[System], skipped: dict[str, str], args: argparse.Namespace
) -> None:
    rounds = args.rounds
    named = [(s.name, s.version()) for s in systems]
    print(f"\n=== {rounds} interleaved round(s); cells: median (min{report.DASH}max) ===\n")
    print(report.main_table(c, named))
    print("\nCost per job (drain: 1 process, from the barrier on; enqueue: the bulk phase):\n")
    print(report.cost_table(c, named))
    notes = [f"skipped {name}: {why}" for name, why in skipped.items()]
    notes += [f"not run for {name}: {why}" for name, why in NOT_RUN.items()]
    notes += [f"{s.name} ran in its own venv {s.own_venv}: its pins clash with tgworkers'"
              for s in systems if s.python != sys.executable]  # fmt: skip
    notes += [f"failed {n} {m}: {why}" for n, f in c.failures.items() for m, why in f.items()]
    print("\n".join(notes))
    if args.pickup_only:
        return  # the chart's drain and CPU panels would be empty: results.png stays
    try:
        report.chart(c, [s.name for s in systems], args.chart)
        print(f"chart: {args.chart}")
    except ImportError:
        print("chart: matplotlib is missing (the bench-peers extra); no PNG written")


def main() -> None:
    args = _args()
    systems, skipped = available(ROOT)
    if args.only:
        systems = [s for s in systems if s.name in args.only.split(",")]
    if not systems:
        sys.exit("bench.peers: no system to run")
    servers = [RedisServer(), RedisServer()]
    c = report.Collector()
    try:
        for server in servers:
            server.start()
        rounds = Rounds(Driver(servers[0].url, servers[1].url), c, args)
        for i in range(args.rounds):
            print(f"round {i + 1}/{args.rounds}", flush=True)
            rounds.one(systems[i % len(systems) :] + systems[: i % len(systems)])
    finally:
        for server in servers:
            server.close()
    _print(c, systems, skipped, args)
    if not (args.no_realistic or args.pickup_only):
        from bench.peers import realistic

        try:
            realistic.main(args.rounds)
        except Exception:  # noqa: BLE001 - the comparison above is still worth having
            traceback.print_exc()


if __name__ == "__main__":
    main()
