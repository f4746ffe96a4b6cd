"""Engine throughput and latency against a raw redis-py baseline, in one run.

Prints figures; never asserts on time. Run: `pytest bench/test_engine_bench.py -m bench -s`.
"""

from __future__ import annotations

import asyncio
import statistics
import time

import pytest
import redis.asyncio as aredis
from tests.conftest import make_settings
from tests.support.processes import start_worker

from bench.jobs import LATENCY_KEY
from tgworkers.engine.client import Client, EnqueueRequest
from tgworkers.engine.layout import Layout
from tgworkers.engine.ops.control import Control
from tgworkers.engine.registry import Registry

pytestmark = pytest.mark.bench
N_RAW = 200_000
N_JOBS = 20_000
APP = "bench.jobs:PROCESSORS"
RESULTS: dict[str, float] = {}


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


async def raw_baseline(url: str) -> tuple[float, float]:
    r = aredis.Redis.from_url(url)
    await r.delete("raw:s")
    t0 = time.perf_counter()
    for start in range(0, N_RAW, 500):
        pipe = r.pipeline(transaction=False)
        for i in range(start, start + 500):
            pipe.xadd("raw:s", {"id": str(i), "name": "noop", "payload": "{}"})
        await pipe.execute()
    xadd_rate = N_RAW / (time.perf_counter() - t0)
    await r.xgroup_create("raw:s", "g", id="0")
    t0 = time.perf_counter()
    done = 0
    while done < N_RAW:
        reply = await r.xreadgroup("g", "c", {"raw:s": ">"}, count=500)
        ids = [e[0] for e in reply[0][1]]
        await r.xack("raw:s", "g", *ids)
        done += len(ids)
    read_rate = N_RAW / (time.perf_counter() - t0)
    await r.delete("raw:s")
    await r.aclose()
    return xadd_rate, read_rate


async def drain_rate(url: str, registry: Registry, processes: int) -> float:
    settings = make_settings(url, CONCURRENCY_TGWORKERS_NOOP=100)
    r = aredis.Redis.from_url(url)
    await r.flushdb()
    control = Control(r, registry, Layout(settings))
    await control.set_paused("tgworkers.noop", paused=True)
    workers = [start_worker(url, processors="tgworkers.noop", app=APP,
                            env={"CONCURRENCY_TGWORKERS_NOOP": "100", "LOG_LEVEL": "warning"})
               for _ in range(processes)]  # fmt: skip
    try:
        client = Client(r, registry, settings)
        reqs = [EnqueueRequest(name="tgworkers.noop", payload={}) for _ in range(N_JOBS)]
        await client.enqueue_many(reqs)
        while int(await r.zcard("{tgw}:workers")) < processes:
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)
        t0 = time.perf_counter()
        await control.set_paused("tgworkers.noop", paused=False)
        while int((await r.hget("{tgw:tgworkers.noop:0}:stats", "processed")) or 0) < N_JOBS:
            await asyncio.sleep(0.002)
        return N_JOBS / (time.perf_counter() - t0)
    finally:
        for w in workers:
            w.close()
        await r.aclose()


async def enqueue_rate(url: str, registry: Registry) -> float:
    settings = make_settings(url)
    r = aredis.Redis.from_url(url)
    await r.flushdb()
    client = Client(r, registry, settings)
    reqs = [EnqueueRequest(name="tgworkers.noop", payload={}) for _ in range(N_JOBS)]
    await client.enqueue_many(reqs[:1000])
    t0 = time.perf_counter()
    await client.enqueue_many(reqs)
    rate = N_JOBS / (time.perf_counter() - t0)
    await r.flushdb()
    await r.aclose()
    return rate


async def latencies(url: str, registry: Registry, *, delayed: bool) -> list[float]:
    settings = make_settings(url)
    r = aredis.Redis.from_url(url)
    await r.flushdb()
    worker = start_worker(url, processors="bench.timed", app=APP, env={"LOG_LEVEL": "warning"})
    try:
        client = Client(r, registry, settings)
        while not await r.zcard("{tgw}:workers"):
            await asyncio.sleep(0.05)
        n = 1000 if delayed else 2500
        start = time.perf_counter()
        for i in range(n):  # 500 jobs/s, one at a time; delayed ones due 1 s after their enqueue
            await asyncio.sleep(max(0.0, start + i / 500 - time.perf_counter()))
            if delayed:
                due = time.time() + 1.0
                await client.enqueue("bench.timed", {"t": due}, run_at_ms=int(due * 1000))
            else:
                await client.enqueue("bench.timed", {"t": time.time()})
        while await r.llen(LATENCY_KEY) < n:
            await asyncio.sleep(0.01)
        return [float(x) for x in await r.lrange(LATENCY_KEY, 0, -1)]
    finally:
        worker.close()
        await r.aclose()


async def test_engine_figures(redis_server_url):
    url = redis_server_url
    registry = Registry(__import__("bench.jobs", fromlist=["PROCESSORS"]).PROCESSORS)
    xadd_rate, read_rate = await raw_baseline(url)
    enq = await enqueue_rate(url, registry)
    d1 = await drain_rate(url, registry, 1)
    d2 = await drain_rate(url, registry, 2)
    lat = await latencies(url, registry, delayed=False)
    late = await latencies(url, registry, delayed=True)
    print("\n=== tgworkers engine benchmark (one run, this machine) ===")
    print(f"raw pipelined XADD:              {xadd_rate:10.0f} msg/s")
    print(f"raw XREADGROUP 500 + XACK:       {read_rate:10.0f} msg/s")
    print(
        f"bulk enqueue (enqueue_many):     {enq:10.0f} jobs/s  = {enq / xadd_rate:6.1%} of raw XADD (target >= 70%)"
    )
    print(
        f"drain 20k no-op, 1 process:      {d1:10.0f} jobs/s  = {d1 / read_rate:6.1%} of raw read+ack (target >= 10%, stretch 20%)"
    )
    print(f"drain 20k no-op, 2 processes:    {d2:10.0f} jobs/s  (x{d2 / d1:.2f})")
    print(
        f"pickup latency at 500/s:         p50 {statistics.median(lat):.2f} ms  p99 {pct(lat, 0.99):.2f} ms (target p99 <= 2 ms)"
    )
    print(
        f"delayed lateness (1000 @ +1 s, 500/s): p50 {statistics.median(late):.2f} ms  p99 {pct(late, 0.99):.2f} ms (target p99 <= 5 ms)"
    )
