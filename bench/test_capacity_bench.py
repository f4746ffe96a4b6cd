"""Capacity model figures for docs/scaling.md: per job, what a worker and Redis spend.

Run: `.venv/bin/pytest bench/test_capacity_bench.py -m bench -s`. Prints; never asserts
on time. For N no-op jobs it measures, with `CONFIG RESETSTAT` before each phase:

- bulk enqueue: Redis commands per job (`INFO commandstats`) and Redis CPU per job;
- drain by one `run` process (concurrency 100): jobs/s, worker CPU per job (from
  /proc/<pid>/stat), Redis CPU per job (`INFO cpu`), Redis commands per job by command.

A real handler adds its own CPU and waits; the engine's share is what is measured here.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import pytest
import redis.asyncio as aredis
from tests.conftest import make_settings
from tests.support.processes import start_worker

from tgworkers.engine.client import Client, EnqueueRequest
from tgworkers.engine.layout import Layout
from tgworkers.engine.ops.control import Control
from tgworkers.engine.registry import Registry

pytestmark = pytest.mark.bench
N_JOBS = 20_000
APP = "bench.jobs:PROCESSORS"
QUEUE = "tgworkers.noop"
TICKS = os.sysconf("SC_CLK_TCK")


async def redis_cpu_s(r: Any) -> float:
    info = await r.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


async def command_calls(r: Any) -> dict[str, int]:
    stats = await r.info("commandstats")
    return {k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in stats.items()}


def process_cpu_s(pid: int) -> float:
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()  # noqa: SIM115
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def per_job(calls: dict[str, int], n: int) -> str:
    rows = sorted(((c / n, name) for name, c in calls.items() if c), reverse=True)
    return ", ".join(f"{name} {rate:.3f}" for rate, name in rows if rate >= 0.001)


async def measure(url: str, registry: Registry, partitions: int) -> dict[str, Any]:
    settings = make_settings(
        url, CONCURRENCY_TGWORKERS_NOOP=100, PARTITIONS_TGWORKERS_NOOP=partitions
    )
    r = aredis.Redis.from_url(url, decode_responses=True)
    await r.flushdb()
    control = Control(r, registry, Layout(settings))
    await control.set_paused(QUEUE, paused=True)
    env = {"CONCURRENCY_TGWORKERS_NOOP": "100", "LOG_LEVEL": "warning",
           "PARTITIONS_TGWORKERS_NOOP": str(partitions)}  # fmt: skip
    worker = start_worker(url, processors=QUEUE, app=APP, env=env)
    out: dict[str, Any] = {"partitions": partitions}
    try:
        client = Client(r, registry, settings)
        await r.config_resetstat()
        cpu0 = await redis_cpu_s(r)
        await client.enqueue_many([EnqueueRequest(name=QUEUE, payload={}) for _ in range(N_JOBS)])
        out["enqueue_redis_us"] = (await redis_cpu_s(r) - cpu0) / N_JOBS * 1e6
        calls = await command_calls(r)
        out["enqueue_cmds"] = sum(calls.values()) / N_JOBS
        out["enqueue_by_cmd"] = per_job(calls, N_JOBS)
        while int(await r.zcard("{tgw}:workers")) < 1:
            await asyncio.sleep(0.05)
        await asyncio.sleep(1.0)
        await r.config_resetstat()
        cpu0, wcpu0, t0 = await redis_cpu_s(r), process_cpu_s(worker.pid), time.perf_counter()
        await control.set_paused(QUEUE, paused=False)
        while await _processed(r, partitions) < N_JOBS:
            await asyncio.sleep(0.01)
        wall = time.perf_counter() - t0
        out["jobs_per_s"] = N_JOBS / wall
        out["worker_us"] = (process_cpu_s(worker.pid) - wcpu0) / N_JOBS * 1e6
        out["drain_redis_us"] = (await redis_cpu_s(r) - cpu0) / N_JOBS * 1e6
        calls = await command_calls(r)
        out["drain_cmds"] = sum(calls.values()) / N_JOBS
        out["drain_by_cmd"] = per_job(calls, N_JOBS)
        return out
    finally:
        worker.close()
        await r.aclose()


async def _processed(r: Any, partitions: int) -> int:
    keys = [f"{{tgw:{QUEUE}:{p}}}:stats" for p in range(partitions)]
    return sum([int(await r.hget(k, "processed") or 0) for k in keys])


async def test_capacity_figures(redis_server_url):
    from bench.jobs import PROCESSORS

    registry = Registry(PROCESSORS)
    for partitions in (1, 4):
        m = await measure(redis_server_url, registry, partitions)
        print(
            f"\npartitions={partitions}: drain {m['jobs_per_s']:,.0f} jobs/s with one process;"
            f" worker CPU {m['worker_us']:.1f} us/job; Redis CPU {m['drain_redis_us']:.1f} us/job"
            f" ({m['drain_cmds']:.2f} commands/job: {m['drain_by_cmd']});"
            f" enqueue: Redis CPU {m['enqueue_redis_us']:.1f} us/job"
            f" ({m['enqueue_cmds']:.3f} commands/job: {m['enqueue_by_cmd']})"
        )
