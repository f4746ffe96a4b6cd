"""The floor: raw redis-py asyncio + hiredis on uvloop, no job engine at all.

Drain: XREADGROUP COUNT 500 then XACK of the batch, separate round trips, nothing run per
message. Enqueue: pipelined XADD, 500 per round trip. No latency or delayed workloads.
"""

from __future__ import annotations

import contextlib
import os

import redis.asyncio as aredis
import uvloop

from bench.peers import entry, probe

STREAM, GROUP = "raw:s", "g"


def work(url: str, concurrency: int) -> None:
    async def main() -> None:
        r = aredis.Redis.from_url(url)
        if not await r.exists(STREAM):
            await r.xadd(STREAM, {"x": "0"})  # create it; this entry is not counted
        with contextlib.suppress(aredis.ResponseError):  # a second process: the group exists
            await r.xgroup_create(STREAM, GROUP, id="$")
        consumer = f"c{os.getpid()}"
        while True:
            reply = await r.xreadgroup(GROUP, consumer, {STREAM: ">"}, count=500, block=1000)
            if not reply:
                continue
            await probe.gate_async()
            ids = [e[0] for e in reply[0][1]]
            await r.xack(STREAM, GROUP, *ids)
            probe.done_many(len(ids))

    uvloop.run(main())


class Producer:
    def __init__(self, url: str) -> None:
        self.redis = aredis.Redis.from_url(url)

    async def __aenter__(self) -> Producer:
        if not await self.redis.exists(STREAM):
            await self.redis.xadd(STREAM, {"x": "0"})
            await self.redis.xgroup_create(STREAM, GROUP, id="$")
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.redis.aclose()

    async def bulk(self, n: int) -> None:
        for start in range(0, n, 500):
            pipe = self.redis.pipeline(transaction=False)
            for i in range(start, min(n, start + 500)):
                pipe.xadd(STREAM, {"id": str(i), "name": "noop", "payload": "{}"})
            await pipe.execute()

    async def one(self, t: float, delay_s: float) -> None:
        raise NotImplementedError


if __name__ == "__main__":
    entry.main(work, Producer)
