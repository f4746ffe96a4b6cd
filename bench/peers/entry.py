"""The command line every system's module shares: `python -m bench.peers.<module> work|produce`.

`work` runs the system's worker in this process until the driver kills it (so the driver
can read this pid's CPU time in /proc). `produce` enqueues and prints one JSON line:
`bulk` enqueues N no-op jobs with the system's fastest enqueue API and reports the rate
and the producer's CPU per job; `paced` sends N latency jobs one at a time at a fixed rate
(each carrying its enqueue time, or its due time when delayed) after a few warm-up jobs
have run, so the worker is known to be consuming.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import redis
import uvloop

from bench.peers import probe

URL_ENV = "BENCH_REDIS_URL"


class Producer(Protocol):
    async def __aenter__(self) -> Producer: ...
    async def __aexit__(self, *exc: object) -> None: ...
    async def bulk(self, n: int) -> None: ...
    async def one(self, t: float, delay_s: float) -> None: ...


async def concurrently(send: Callable[[int], Awaitable[Any]], n: int, width: int = 100) -> None:
    """For systems without a bulk enqueue API: n sends, `width` in flight at a time."""
    it = iter(range(n))

    async def lane() -> None:
        for i in it:
            await send(i)

    await asyncio.gather(*(lane() for _ in range(width)))


def _ctl_count(ctl: redis.Redis) -> int:
    return sum(int(v.split()[0]) for v in ctl.hvals(probe.PROG_KEY))


async def _bulk(p: Producer, n: int) -> dict[str, float]:
    cpu0, t0 = time.process_time(), time.perf_counter()
    await p.bulk(n)
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    return {"rate": n / wall, "cpu_us_per_job": cpu / n * 1e6}


async def _paced(p: Producer, n: int, rate: float, delay_s: float, warmup: int) -> dict[str, float]:
    ctl = redis.Redis.from_url(os.environ[probe.CTL_URL_ENV])
    for _ in range(warmup):
        await p.one(-1.0, 0.0)
    deadline = time.monotonic() + 120
    while _ctl_count(ctl) < warmup:
        if time.monotonic() > deadline:
            raise SystemExit("warm-up jobs never ran: the worker is not consuming")
        await asyncio.sleep(0.02)
    start = time.perf_counter()
    for i in range(n):
        await asyncio.sleep(max(0.0, start + i / rate - time.perf_counter()))
        await p.one(time.time() + delay_s, delay_s)
    return {"rate": n / (time.perf_counter() - start)}


def main(work: Callable[[str, int], None], producer: Callable[[str], Producer]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("cmd", choices=("work", "produce"))
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--mode", choices=("bulk", "paced"), default="bulk")
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--rate", type=float, default=500)
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--warmup", type=int, default=20)
    args = parser.parse_args()
    url = os.environ[URL_ENV]
    if args.cmd == "work":
        work(url, args.concurrency)
        return

    async def produce() -> dict[str, float]:
        async with producer(url) as p:
            if args.mode == "bulk":
                return await _bulk(p, args.n)
            return await _paced(p, args.n, args.rate, args.delay, args.warmup)

    print(json.dumps(uvloop.run(produce())), flush=True)
