"""taskiq with taskiq-redis's `RedisStreamBroker` (Redis Streams, consumer group).

Best settings (research/peer-benchmarks.md): async tasks on uvloop, `max_async_tasks` =
concurrency, `max_connection_pool_size=1000` (redis-py 8's pool cap of 100), no result
backend. Gotcha: the broker creates its group at `$` in `startup()`, so entries added
before any `startup()` are never delivered: the producer starts the broker first. No bulk
API: `kiq()` with 100 in flight. Delayed jobs need a separate `TaskiqScheduler` process
and a schedule source, so the delayed workload is not run for taskiq.
"""

from __future__ import annotations

import os

import uvloop
from taskiq.api import run_receiver_task
from taskiq_redis import RedisStreamBroker

from bench.peers import entry, probe

broker = RedisStreamBroker(os.environ[entry.URL_ENV], max_connection_pool_size=1000)


@broker.task
async def noop() -> None:
    await probe.gate_async()
    probe.done()


@broker.task
async def timed(t: float) -> None:
    probe.timed(t)


def work(url: str, concurrency: int) -> None:
    async def main() -> None:
        await run_receiver_task(broker, max_async_tasks=concurrency, run_startup=True)

    uvloop.run(main())


class Producer:
    def __init__(self, url: str) -> None:
        pass

    async def __aenter__(self) -> Producer:
        await broker.startup()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await broker.shutdown()

    async def bulk(self, n: int) -> None:
        await entry.concurrently(lambda _: noop.kiq(), n)

    async def one(self, t: float, delay_s: float) -> None:
        await timed.kiq(t)


if __name__ == "__main__":
    entry.main(work, Producer)
