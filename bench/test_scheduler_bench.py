"""Scheduler fire precision: tick time to job start at idle (target p99 <= 50 ms).

Run: `pytest bench/test_scheduler_bench.py -m bench -s`. Prints; never asserts time.
"""

from __future__ import annotations

import asyncio
import statistics

import pytest
import redis.asyncio as aredis
from tests.support.processes import start_worker

from bench.jobs import LATENCY_KEY

pytestmark = pytest.mark.bench
TICKS = 20


async def test_fire_precision(redis_server_url):
    r = aredis.Redis.from_url(redis_server_url)
    await r.flushdb()
    worker = start_worker(redis_server_url, processors="bench.tick", app="bench.jobs:PROCESSORS",
                          env={"LOG_LEVEL": "warning"})  # fmt: skip
    try:
        while await r.llen(LATENCY_KEY) < TICKS:
            await asyncio.sleep(0.2)
        lags = sorted(float(x) for x in await r.lrange(LATENCY_KEY, 0, -1))
    finally:
        worker.close()
        await r.aclose()
    p99 = lags[min(len(lags) - 1, int(0.99 * len(lags)))]
    print(f"\nschedule fire precision over {len(lags)} ticks (1-second schedule, idle):")
    print(
        f"  tick -> job start: p50 {statistics.median(lags):.2f} ms  p99 {p99:.2f} ms  max {lags[-1]:.2f} ms (target p99 <= 50 ms)"
    )
