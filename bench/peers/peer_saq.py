"""saq: async jobs on uvloop, one BLMOVE loop per concurrency slot.

Best settings (research/peer-benchmarks.md): `Worker(concurrency=100)` and a client with
`max_connections=1000`: each slot holds a blocking connection, so with redis-py 8's
default cap of 100 its upkeep tasks (the scheduler included) fail and delayed jobs never
run. No bulk enqueue API: `enqueue()` with 100 in flight. Delayed: `scheduled=` (epoch s).
"""

from __future__ import annotations

import os
from typing import Any

import redis.asyncio as aredis
import uvloop
from saq import Worker
from saq.queue.redis import RedisQueue

from bench.peers import entry, probe


def _queue() -> RedisQueue:
    return RedisQueue(aredis.from_url(os.environ[entry.URL_ENV], max_connections=1000))


async def noop(ctx: Any) -> None:
    await probe.gate_async()
    probe.done()


async def timed(ctx: Any, *, t: float) -> None:
    probe.timed(t)


def work(url: str, concurrency: int) -> None:
    async def main() -> None:
        await Worker(_queue(), functions=[noop, timed], concurrency=concurrency).start()

    uvloop.run(main())


class Producer:
    def __init__(self, url: str) -> None:
        self.queue = _queue()

    async def __aenter__(self) -> Producer:
        await self.queue.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.queue.disconnect()

    async def bulk(self, n: int) -> None:
        await entry.concurrently(lambda _: self.queue.enqueue("noop"), n)

    async def one(self, t: float, delay_s: float) -> None:
        await self.queue.enqueue("timed", t=t, scheduled=t if delay_s else 0)


if __name__ == "__main__":
    entry.main(work, Producer)
