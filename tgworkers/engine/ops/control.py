"""Pause, resume and drain: operator controls every worker observes within 1 s.

Pause flags live in one hash (`{prefix}:control`, field = queue) that every
worker polls every 200 ms, so a pause reaches all workers well within a second
without any extra connection. A paused queue still accepts jobs and still
promotes due delayed jobs; it only stops handing them to handlers (promise 9).
Drain deletes the jobs no worker has taken yet, partition by partition, by script.

Two parties can hold a pause: an operator (the flag above) and the configuration
(`PAUSED_QUEUES`, from the environment or the hot-reload document). Workers obey
either. Resume clears only the operator's flag, so resuming a queue the
configuration holds is refused (`ConflictError`, HTTP 409) naming `PAUSED_QUEUES`
instead of answering "resumed" while nothing runs.
"""

from __future__ import annotations

from typing import Final

import msgspec
from redis.asyncio import Redis

from tgworkers.engine.layout import Layout
from tgworkers.engine.registry import Registry
from tgworkers.engine.wire.scripts import Scripts
from tgworkers.errors import ConflictError

POLL_INTERVAL_S: Final = 0.2
OPERATOR: Final = "operator"
CONFIGURATION: Final = "configuration"
DRAIN_CHUNK: Final = 1000


class DrainResult(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """`drain --json`: `{"queue", "removedReady", "removedDelayed"}`."""

    queue: str
    removed_ready: int
    removed_delayed: int


class PauseState(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """`pause --json` / `resume --json`: `{"queue", "paused", "pausedBy"}` after the change."""

    queue: str
    paused: bool
    paused_by: list[str]


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

    def held_by_configuration(self, queue: str) -> bool:
        """`PAUSED_QUEUES` (environment or config document, as in force now) names it."""
        return queue in self.layout.settings.paused_queues

    async def set_paused(self, queue: str, *, paused: bool) -> dict[str, object]:
        """Set or clear the operator's flag, whoever else holds the queue (repartition)."""
        self.registry.queue(queue)
        if paused:
            await self.redis.hset(self.layout.globals.control, queue, "paused")
        else:
            await self.redis.hdel(self.layout.globals.control, queue)
        return {"queue": queue, "paused": paused}

    async def operator_pause(self, queue: str, *, paused: bool) -> PauseState:
        """An operator's pause or resume (CLI, API, console): refused when it cannot work.

        Answers `{"queue", "paused", "pausedBy"}` as they are after the change.
        """
        self.registry.queue(queue)
        config = self.held_by_configuration(queue)
        if not paused and config:
            raise ConflictError(
                f"queue {queue} is paused by the configuration (PAUSED_QUEUES), not by an "
                "operator; resume it there: remove it from PAUSED_QUEUES in the config "
                "document or the environment"
            )
        await self.set_paused(queue, paused=paused)
        holders = ([OPERATOR] if paused else []) + ([CONFIGURATION] if config else [])
        return PauseState(queue=queue, paused=bool(holders), paused_by=holders)

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
