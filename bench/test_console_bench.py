"""Operator surfaces over a large DLQ: answer time and size, and the console's pages.

100,000 dead letters in one queue by default (`TGW_BENCH_DEAD=N` for another count;
issue 26 asks for answers under 200 ms at 100,000; an earlier issue's case was
`?limit=999999999`, which built one 32 MB answer on the worker's event loop). Measures, over ASGI on real Redis:
the largest API page now allowed (`limit=1000`), the default page, the refused
unbounded request, the console's DLQ page (50 a page), the overview and a job page.
Prints, never asserts on time. Run: `pytest bench/test_console_bench.py -m bench -s`.
"""

from __future__ import annotations

import os
import statistics
import time

import pytest
from tests.support.admin_http import ADMIN, admin_client, ops_settings
from tests.support.cli_runner import seed_dead
from tests.support.jobs import PROCESSORS

from tgworkers.engine.registry import Registry

pytestmark = pytest.mark.bench
N_DEAD = int(os.environ.get("TGW_BENCH_DEAD", "100000"))
RUNS = 5


async def _timed(http, path: str) -> tuple[float, int, int]:
    times, size, status = [], 0, 0
    for _ in range(RUNS):
        start = time.perf_counter()
        r = await http.get(path, headers=ADMIN)
        times.append(time.perf_counter() - start)
        size, status = len(r.content), r.status_code
    return statistics.median(times) * 1000, size, status


async def test_console_and_api_answers_over_many_dead_letters(redis_server_url):
    redis_url = redis_server_url
    from redis.asyncio import Redis

    redis = Redis.from_url(redis_url)
    await redis.flushdb()
    await seed_dead(redis, N_DEAD, pad=1500)  # ~1.6 kB per dead letter, as in the issue
    async with admin_client(ops_settings(redis_url), Registry(PROCESSORS)) as http:
        rows = [
            ("API dlq ?limit=999999999", "/admin/v1/dlq/test.work?limit=999999999"),
            ("API dlq ?limit=1000 (max)", "/admin/v1/dlq/test.work?limit=1000"),
            ("API dlq default (100)", "/admin/v1/dlq/test.work"),
            ("console DLQ page (50)", "/ui/queues/test.work/dlq"),
            ("console overview", "/ui/"),
            ("console queue page", "/ui/queues/test.work"),
            ("console job page (dead)", f"/ui/queues/test.work/jobs/dead-{N_DEAD - 1}"),
            ("console DLQ, id prefix", "/ui/queues/test.work/dlq?idPrefix=dead-9999"),
            ("console DLQ, error text", "/ui/queues/test.work/dlq?error=bad+thing"),
            ("console DLQ, no match", "/ui/queues/test.work/dlq?error=no+such+text"),
            ("console DLQ, sorted", "/ui/queues/test.work/dlq?sort=-attempts"),
            ("console finished, prefix", "/ui/finished?prefix=dead-"),
            ("console schedules", "/ui/schedules"),
            ("API audit (100)", "/admin/v1/audit"),
        ]
        print(f"\n{N_DEAD} dead letters, median of {RUNS}")
        print(f"{'request':32} {'status':>6} {'ms':>8} {'bytes':>10}")
        for label, path in rows:
            ms, size, status = await _timed(http, path)
            print(f"{label:32} {status:>6} {ms:8.1f} {size:>10}")
    await redis.aclose()
