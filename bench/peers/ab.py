"""`python -m bench.peers.ab DIR [DIR ...]`: CPU per drained job, trees interleaved.

The 1-process drain of `bench.peers` (same driver, probe and barrier), run for this
tree and for each DIR holding another `tgworkers/` package (e.g. from
`git archive REV tgworkers | tar -x -C DIR`), alternating in every round, so a
before/after is measured under the same load. Prints worker CPU, Redis CPU and
commands per job for each run, then the median (min-max) per tree. Never asserts.
"""

from __future__ import annotations

import argparse
import os

from bench.peers.driver import Driver, summary
from tgworkers.devstack.redis import RedisServer

MODULE = "bench.peers.peer_tgworkers"


def _fmt(values: list[float], digits: int = 1) -> str:
    mid, lo, hi = summary(values)
    return f"{mid:.{digits}f} ({lo:.{digits}f}-{hi:.{digits}f})"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.peers.ab")
    parser.add_argument("trees", nargs="*", help="directories holding another tgworkers/")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=20_000)
    args = parser.parse_args()
    trees = [("this tree", ""), *((t, os.path.abspath(t)) for t in args.trees)]
    got: dict[str, dict[str, list[float]]] = {name: {} for name, _ in trees}
    servers = [RedisServer(), RedisServer()]
    try:
        for server in servers:
            server.start()
        driver = Driver(servers[0].url, servers[1].url)
        for i in range(args.rounds):
            order = trees[i % len(trees) :] + trees[: i % len(trees)]
            for name, path in order:
                drain, _ = driver.drain(MODULE, 1, args.jobs, path=path)
                cost = drain.worker
                row = {"worker_us": cost.process_us, "redis_us": cost.redis_us,
                       "commands": cost.commands, "rate": drain.rate}  # fmt: skip
                for key, value in row.items():
                    got[name].setdefault(key, []).append(value)
                print(f"round {i + 1} {name:12s} worker {cost.process_us:5.1f} us/job,"
                      f" Redis {cost.redis_us:5.1f} us/job, {cost.commands:.3f} commands/job,"
                      f" {drain.rate:,.0f} jobs/s", flush=True)  # fmt: skip
    finally:
        for server in servers:
            server.close()
    print(f"\nload average {os.getloadavg()[0]:.1f}; median (min-max) of {args.rounds}:")
    for name, _ in trees:
        g = got[name]
        print(f"{name:12s} worker {_fmt(g['worker_us'])} us/job; Redis {_fmt(g['redis_us'])}"
              f" us/job; {_fmt(g['commands'], 3)} commands/job; {_fmt(g['rate'], 0)} jobs/s")  # fmt: skip


if __name__ == "__main__":
    main()
