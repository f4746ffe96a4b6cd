"""The soak: jobs flow through 4 workers while a random one is SIGKILLed every few
seconds and Redis is restarted once (promises 1, 2, 11).

It reports what an operator asks after such a day: jobs lost (must be 0), jobs run
more than once (each such job must have run under one id, so its peer calls carried
one Idempotency-Key), pickup latency p50/p99, and Redis memory and worker RSS over
time. The quick form (3,000 jobs) runs in CI; the long form is

    TGW_SOAK_JOBS=100000 .venv/bin/pytest tests/chaos/test_soak.py -s

and its report is in docs/engine.md.
"""

from __future__ import annotations

import json
import os
import random
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import anyio
import pytest
from redis.asyncio import Redis
from redis.exceptions import RedisError
from tests.chaos.conftest import Fleet, events, now_ms, pk, queue_idle, runs
from tests.support.jobs import RunRecord
from tests.support.processes import WorkerProcess
from tests.support.redis_server import RedisServer
from tests.support.wait import wait_until

from tgworkers.engine.client import Client, EnqueueRequest

pytestmark = [pytest.mark.chaos]

JOBS = int(os.environ.get("TGW_SOAK_JOBS", "3000"))
RATE = int(os.environ.get("TGW_SOAK_RATE", "1000"))  # jobs/s offered
KILL_EVERY_S = float(os.environ.get("TGW_SOAK_KILL_EVERY_S", "1.5"))
WORKERS = 4
WORKER_ENV = {"CONCURRENCY_TEST_WORK": "32"}


class Soak:
    """The fleet under fire, and what was seen of it."""

    def __init__(self, r: Redis, server: RedisServer, client: Client, fleet: Fleet) -> None:
        self.r, self.server, self.client, self.fleet = r, server, client, fleet
        self.live = [fleet.start("test.work", **WORKER_ENV) for _ in range(WORKERS)]
        self.enqueued_ms: dict[int, int] = {}
        self.samples: list[dict[str, Any]] = []
        self.kills = 0
        self.restarted = False
        self.started = time.monotonic()

    async def produce(self) -> None:
        batch = max(RATE // 10, 1)
        for start in range(0, JOBS, batch):
            reqs = [
                EnqueueRequest(name="test.work", payload={"n": n}, id=f"soak-{n}")
                for n in range(start, min(start + batch, JOBS))
            ]
            await self.enqueue(reqs)
            t = now_ms()
            self.enqueued_ms.update((n, t) for n in range(start, start + len(reqs)))
            await anyio.sleep(0.1)

    async def enqueue(self, reqs: list[EnqueueRequest]) -> None:
        """As a producer should: explicit ids, so a retry after an unknown outcome
        (Redis restarting under the call) creates nothing twice."""
        while True:
            try:
                await self.client.enqueue_many(reqs)
            except RedisError:
                await anyio.sleep(0.2)
            else:
                return

    async def all_ran(self) -> bool:
        if await self.r.llen("test:runs") < JOBS:  # cheap first: the log is long
            return False
        return len({x.n for x in await runs(self.r)}) >= JOBS

    def kill_one(self) -> None:
        victim = random.choice(self.live)
        victim.kill()
        self.live.remove(victim)
        self.live.append(self.fleet.start("test.work", **WORKER_ENV))
        self.kills += 1

    def restart_redis(self) -> None:
        self.server.stop(kill=True)
        self.server.start()
        self.restarted = True

    async def sample(self) -> None:
        self.samples.append({
            "t_s": round(time.monotonic() - self.started, 1),
            "redis_bytes": await redis_bytes(self.r),
            "rss_mb": [round(rss_mb(w.pid), 1) for w in self.live],
        })  # fmt: skip

    async def run(self) -> None:
        next_kill = time.monotonic() + KILL_EVERY_S / 2
        next_sample = time.monotonic()
        restart_at = self.started + max(JOBS / RATE / 2, 1.0)
        deadline = self.started + 60 + JOBS / 200
        while not await self.all_ran():
            now = time.monotonic()
            assert now < deadline, f"soak did not finish: {await self.r.llen('test:runs')} runs"
            if now >= next_kill:
                self.kill_one()
                next_kill = now + KILL_EVERY_S
            if not self.restarted and now >= restart_at:
                self.restart_redis()
            if now >= next_sample:
                await self.sample()
                next_sample = now + 1.0
            await anyio.sleep(0.25)

    async def report(self, got: list[RunRecord]) -> dict[str, Any]:
        ids_by_n: dict[int, set[str]] = defaultdict(set)
        runs_by_n: dict[int, int] = defaultdict(int)
        for x in got:
            ids_by_n[x.n].add(x.job_id)
            runs_by_n[x.n] += 1
        pickup = sorted(x.start_ms - self.enqueued_ms[x.n] for x in got if x.n in self.enqueued_ms)
        return {
            "jobs": JOBS, "workers": WORKERS, "sigkills": self.kills,
            "redis_restarts": int(self.restarted), "lost": JOBS - len(ids_by_n),
            "ran_more_than_once": sum(1 for c in runs_by_n.values() if c > 1),
            "duplicates_under_one_id": all(len(ids) == 1 for ids in ids_by_n.values()),
            "pickup_ms": {"p50": pickup[len(pickup) // 2], "p99": pickup[int(len(pickup) * 0.99)]},
            "seconds": round(time.monotonic() - self.started, 1),
            "redis_bytes_first_last": [self.samples[0]["redis_bytes"], await redis_bytes(self.r)],
            "rss_mb_first_last": [self.samples[0]["rss_mb"], self.samples[-1]["rss_mb"]],
        }  # fmt: skip


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


async def redis_bytes(r: Redis) -> int:
    """The dataset's bytes (no client buffers, AOF buffers or script cache), less the
    test's own run log, which grows with the jobs by design."""
    used = int((await r.info("memory"))["used_memory_dataset"])
    return used - int(await r.memory_usage("test:runs") or 0)


def _started(w: WorkerProcess) -> bool:
    assert w.alive(), w.log()
    return bool(events(w, "worker.started"))


@pytest.mark.timeout(120 + JOBS / 100)
@pytest.mark.promise(1)
@pytest.mark.promise(2)
async def test_soak_with_sigkills_and_a_redis_restart_loses_nothing(
    r: Redis, aof_server: RedisServer, chaos_client: Client, fleet: Fleet
) -> None:
    soak = Soak(r, aof_server, chaos_client, fleet)
    await wait_until(lambda: all(_started(w) for w in soak.live), timeout_s=30, what="workers")
    async with anyio.create_task_group() as tg:
        tg.start_soon(soak.produce)
        await soak.run()
    await wait_until(lambda: queue_idle(r, pk()), timeout_s=30, what="queue idle")
    report = await soak.report(await runs(r))
    print("\nsoak report:", json.dumps(report))
    if path := os.environ.get("TGW_SOAK_REPORT"):
        text = json.dumps({**report, "series": soak.samples}, indent=1)
        await anyio.Path(path).write_text(text)
    assert report["lost"] == 0
    assert report["duplicates_under_one_id"]
    assert not await r.exists(pk().dlq)
    assert all(w.alive() for w in soak.live)
