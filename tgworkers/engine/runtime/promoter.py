"""Moves one runtime's due delayed jobs (retries, snoozes, scheduled jobs) to its streams.

`run` sleeps exactly until the next due time, and is woken early (`wake`) by Pub/Sub
when an earlier job arrives, or by the runtime when it parks a job itself.
"""

from __future__ import annotations

from typing import Final, Protocol

import anyio
import structlog

from tgworkers.engine.runtime.counters import RuntimeCounters
from tgworkers.engine.wire.connection import RedisHealth, guarded
from tgworkers.engine.wire.keys import PartitionKeys
from tgworkers.engine.wire.scripts import Scripts

log = structlog.get_logger("tgworkers.engine")

PROMOTE_LIMIT: Final = 500
IDLE_PROMOTE_S: Final = 1.0


class PromoterHost(Protocol):
    """What promoting needs of the runtime it serves."""

    queue: str
    partitions: list[PartitionKeys]
    scripts: Scripts
    health: RedisHealth
    counters: RuntimeCounters


class Promoter:
    """The delayed-job promoter of one runtime."""

    def __init__(self, runtime: PromoterHost) -> None:
        self.rt = runtime
        self._wake = anyio.Event()

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        while True:
            wait_s = await guarded(self.rt.health, "promote", self.promote_once)
            if wait_s is None:
                wait_s = IDLE_PROMOTE_S
            if wait_s > 0:
                with anyio.move_on_after(wait_s):
                    await self._wake.wait()
            self._wake = anyio.Event()

    async def promote_once(self) -> float:
        """Promote what is due; returns how long to sleep until the next due job."""
        soonest: float = IDLE_PROMOTE_S
        for pk in self.rt.partitions:
            done = await self.rt.scripts.promote_due(pk, limit=PROMOTE_LIMIT)
            if done.lost:
                self.rt.counters.lost += done.lost
                log.error("job.delayed_lost", queue=self.rt.queue, count=done.lost)
            if done.dead:
                self.rt.counters.dead += done.dead
                log.error("job.delayed_malformed", queue=self.rt.queue, count=done.dead,
                          partition=pk.partition, outcome="dead-lettered")  # fmt: skip
            if done.moved + done.lost + done.dead >= PROMOTE_LIMIT:
                soonest = 0.0
            elif done.next_due_ms >= 0:
                soonest = min(soonest, max(done.next_due_ms - done.now_ms, 0) / 1000)
        return soonest
