"""Pause, resume and drain: operator controls every worker observes within 1 s.

Pause flags live in one hash (`{prefix}:control`, field = queue) that every
worker polls every 200 ms, so a pause reaches all workers well within a second
without any extra connection. A paused queue still accepts jobs and still
promotes due delayed jobs; it only stops handing them to handlers (promise 9).
Drain deletes the jobs no worker has taken yet, partition by partition, by script.
"""

from __future__ import annotations

from typing import Final

import msgspec
from redis.asyncio import Redis

from tgworkers.engine.layout import Layout
from tgworkers.engine.registry import Registry
from tgworkers.engine.scripts import Scripts

POLL_INTERVAL_S: Final = 0.2
DRAIN_CHUNK: Final = 1000


class DrainResult(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """`drain --json`: `{"queue", "removedReady", "removedDelayed"}`."""

    queue: str
    removed_ready: int
    removed_delayed: int


class Control:
    """Reads and changes the pause flags; drains queues."""

    def __init__(
        self, redis: Redis, registry: Registry, layout: Layout, scripts: Scripts | None = None
    ) -> None:
        self.redis = redis
        self.registry = registry
        self.layout = layout
        self.scripts = scripts or Scripts(redis)  # the process's one, when it is handed in

    async def paused_queues(self) -> set[str]:
        raw: dict[bytes, bytes] = await self.redis.hgetall(self.layout.globals.control)  # type: ignore[assignment]
        return {k.decode() for k, v in raw.items() if v == b"paused"}

    async def set_paused(self, queue: str, *, paused: bool) -> dict[str, object]:
        self.registry.queue(queue)
        if paused:
            await self.redis.hset(self.layout.globals.control, queue, "paused")
        else:
            await self.redis.hdel(self.layout.globals.control, queue)
        return {"queue": queue, "paused": paused}

    async def drain(self, queue: str, *, delayed: bool) -> DrainResult:
        proc = self.registry.queue(queue)
        ready = later = 0
        for pk in self.layout.partitions(proc):
            more = True
            while more:
                r, d, more = await self.scripts.drain_ready(pk, delayed=delayed, limit=DRAIN_CHUNK)
                ready += r
                later += d
        return DrainResult(queue=queue, removed_ready=ready, removed_delayed=later)
