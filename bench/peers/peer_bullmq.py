"""bullmq (the Python port of BullMQ): lists, sorted sets and hashes moved by Lua scripts.

Runs in its own venv (.venv-bullmq, made by scripts/setup-peers-env): bullmq 3.4 pins
croniter==2.0.7 and tgworkers needs croniter>=6, so it cannot share ours; this module and
the probe import only redis and uvloop. Best settings (research/peer-benchmarks.md): async
processor on uvloop, `concurrency=100`, defaults otherwise (completed jobs are kept). Bulk:
`addBulk`, 1,000 per call. Delayed: `{"delay": ms}`.
"""

from __future__ import annotations

import asyncio
from typing import Any

import uvloop
from bullmq import Queue, Worker

from bench.peers import entry, probe

NAME = "bench"


async def process(job: Any, token: str) -> None:
    if job.name == "noop":
        await probe.gate_async()
        probe.done()
    else:
        probe.timed(job.data["t"])


def work(url: str, concurrency: int) -> None:
    async def main() -> None:
        worker = Worker(NAME, process, {"connection": url, "concurrency": concurrency})
        await asyncio.Event().wait()
        await worker.close()

    uvloop.run(main())


class Producer:
    def __init__(self, url: str) -> None:
        self.queue = Queue(NAME, {"connection": url})

    async def __aenter__(self) -> Producer:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.queue.close()

    async def bulk(self, n: int) -> None:
        for start in range(0, n, 1000):
            jobs = [{"name": "noop", "data": {}} for _ in range(start, min(n, start + 1000))]
            await self.queue.addBulk(jobs)

    async def one(self, t: float, delay_s: float) -> None:
        opts = {"delay": int(delay_s * 1000)} if delay_s else {}
        await self.queue.add("timed", {"t": t}, opts)


if __name__ == "__main__":
    entry.main(work, Producer)
