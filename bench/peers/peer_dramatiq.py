"""dramatiq: sync actors on 100 worker threads (its documented model), Redis broker.

Best settings (research/peer-benchmarks.md): `Worker(worker_threads=concurrency)`, and a
connection pool of 1,000 (redis-py 8 caps a pool at 100 by default, and 100 threads then
hit "Too many connections" on ack, each retried after a 5 s sleep). No result backend.
Delayed: `send_with_options(delay=ms)`. No bulk enqueue API: one `send()` per job.
"""

from __future__ import annotations

import os
import threading

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker

from bench.peers import entry, probe

broker = RedisBroker(
    client=redis.Redis(
        connection_pool=redis.ConnectionPool.from_url(
            os.environ[entry.URL_ENV], max_connections=1000
        )
    )
)
dramatiq.set_broker(broker)


@dramatiq.actor(max_retries=0)
def noop() -> None:
    probe.gate_sync()
    probe.done()


@dramatiq.actor(max_retries=0)
def timed(t: float) -> None:
    probe.timed(t)


def work(url: str, concurrency: int) -> None:
    worker = dramatiq.Worker(broker, worker_threads=concurrency)
    worker.start()
    threading.Event().wait()  # until the driver kills this process


class Producer:
    """dramatiq's client is sync and has no bulk API: a loop of `send()`, one Lua call each."""

    def __init__(self, url: str) -> None:
        pass

    async def __aenter__(self) -> Producer:
        return self

    async def __aexit__(self, *exc: object) -> None:
        pass

    async def bulk(self, n: int) -> None:
        for _ in range(n):
            noop.send()

    async def one(self, t: float, delay_s: float) -> None:
        delay = int(delay_s * 1000) or None
        timed.send_with_options(args=(t,), delay=delay)


if __name__ == "__main__":
    entry.main(work, Producer)
