"""streaq: Redis Streams + consumer group (the design closest to ours), coredis client.

Best settings (research/peer-benchmarks.md): async tasks, `concurrency=100`, anyio on
uvloop (`anyio_kwargs={"use_uvloop": True}`), defaults otherwise (results kept with a
TTL). Bulk: `Worker.enqueue_many`, one pipeline per 1,000. Delayed: `.start(delay=)`.
"""

from __future__ import annotations

import os
from datetime import timedelta

from streaq import Worker

from bench.peers import entry, probe

CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY", "100"))
worker = Worker(
    redis_url=os.environ[entry.URL_ENV],
    concurrency=CONCURRENCY,
    anyio_kwargs={"use_uvloop": True},
)


@worker.task()
async def noop() -> None:
    await probe.gate_async()
    probe.done()


@worker.task()
async def timed(t: float) -> None:
    probe.timed(t)


def work(url: str, concurrency: int) -> None:
    worker.run_sync()


class Producer:
    def __init__(self, url: str) -> None:
        pass

    async def __aenter__(self) -> Producer:
        await worker.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await worker.__aexit__(None, None, None)

    async def bulk(self, n: int) -> None:
        for start in range(0, n, 1000):
            await worker.enqueue_many([noop.enqueue() for _ in range(start, min(n, start + 1000))])

    async def one(self, t: float, delay_s: float) -> None:
        task = timed.enqueue(t)
        if delay_s:
            task = task.start(delay=timedelta(seconds=delay_s))
        await task


if __name__ == "__main__":
    entry.main(work, Producer)
