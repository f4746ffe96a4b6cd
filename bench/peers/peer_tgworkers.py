"""tgworkers through its public surface: `Client.enqueue_many` / `enqueue` and `run --app`.

The worker is the real `python -m tgworkers run` command (exec'd, so the driver's pid is
the worker's), with default settings: OTel SDK on without an exporter, JSON logs at
warning. Two processors at concurrency 100: `bench.noop` for the drain, `bench.timed` for
latency. Delayed: `enqueue(run_at_ms=...)`; bulk: `enqueue_many` (one script call per 500).
"""

from __future__ import annotations

import os
import sys

import msgspec
import redis.asyncio as aredis

from bench.peers import entry, probe
from tgworkers.config import load_settings
from tgworkers.engine import Done, JobContext, JobType, Outcome, Processor
from tgworkers.engine.client import Client, EnqueueRequest
from tgworkers.engine.registry import Registry


class Empty(msgspec.Struct, frozen=True):
    pass


class Timed(msgspec.Struct, frozen=True):
    t: float


async def noop(ctx: JobContext, p: Empty) -> Outcome:
    await probe.gate_async()
    probe.done()
    return Done()


async def timed(ctx: JobContext, p: Timed) -> Outcome:
    probe.timed(p.t)
    return Done()


PROCESSORS = (
    Processor(
        name="bench.noop",
        job_types=(JobType(name="bench.noop", payload=Empty, handler=noop),),
        concurrency=100,
    ),
    Processor(
        name="bench.timed",
        job_types=(JobType(name="bench.timed", payload=Timed, handler=timed),),
        concurrency=100,
    ),
)


def work(url: str, concurrency: int) -> None:
    os.environ.update({"REDIS_URL": url, "LOG_LEVEL": "warning", "LOG_FORMAT": "json"})
    os.environ["CONCURRENCY_BENCH_NOOP"] = os.environ["CONCURRENCY_BENCH_TIMED"] = str(concurrency)
    app = "bench.peers.peer_tgworkers:PROCESSORS"
    argv = [sys.executable, "-m", "tgworkers", "run", "--processors", "bench.noop,bench.timed"]
    os.execv(sys.executable, [*argv, "--app", app])  # noqa: S606 - our own interpreter


class Producer:
    def __init__(self, url: str) -> None:
        self.redis = aredis.Redis.from_url(url)
        self.client = Client(self.redis, Registry(PROCESSORS), load_settings({"REDIS_URL": url}))

    async def __aenter__(self) -> Producer:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.redis.aclose()

    async def bulk(self, n: int) -> None:
        # at most 50,000 a call: `enqueue_many` sends its 500-job script calls at once,
        # and a plain client's pool (100 connections) refuses more (profile.py's long drains)
        for start in range(0, n, 50_000):
            await self.client.enqueue_many(
                EnqueueRequest(name="bench.noop", payload={}) for _ in range(min(n - start, 50_000))
            )

    async def one(self, t: float, delay_s: float) -> None:
        run_at = int(t * 1000) if delay_s else None
        await self.client.enqueue("bench.timed", {"t": t}, run_at_ms=run_at)


if __name__ == "__main__":
    entry.main(work, Producer)
