"""Recovery of one processor's queue: what dead or stalled workers left behind.

Duties, run by `Recovery.run` every `sweep_interval_s`:
1. `reclaim_once`: XAUTOCLAIM of entries idle past the visibility timeout, paged,
   within the runtime's free slots; a job delivered more than `MAX_DELIVERIES`
   times without settling is dead-lettered as poison before any handler runs;
   entries deleted while pending are counted as lost;
2. every tenth sweep, `reap_consumers_once` (consumers of dead workers, only with
   no pending entries) and `forget_stale_once` (job-state records of lost jobs).

A "repeat suspect" (delivered SUSPECT_DELIVERIES times or more, not yet poison)
has been on workers that died. A worker process takes at most one at a time, so
a job that sat beside a poison job is not charged for the poison's crashes.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Awaitable, Callable
from typing import Any, Final, Protocol

import anyio
import structlog

from tgworkers.engine.options import RuntimeOptions
from tgworkers.engine.outcome import DeadReason
from tgworkers.engine.runtime.broker import Broker
from tgworkers.engine.runtime.counters import RuntimeCounters
from tgworkers.engine.runtime.deliveries import Deliveries
from tgworkers.engine.runtime.delivery import Delivery
from tgworkers.engine.runtime.settlement import Settlement, dead
from tgworkers.engine.wire.connection import RedisHealth, guarded
from tgworkers.engine.wire.keys import PartitionKeys
from tgworkers.engine.wire.scripts import Scripts

log = structlog.get_logger("tgworkers.engine")

SUSPECT_DELIVERIES: Final = 3
REAP_EVERY_SWEEPS: Final = 10

_in_process: weakref.WeakSet[Recovery] = weakref.WeakSet()
"""Every recovery of this process: all its queues die together with a poison job."""


class _Room:
    """The process-wide reservation of room for one repeat suspect."""

    holder: Recovery | None = None


class RecoveryHost(Protocol):
    """What recovery needs of the runtime it serves: its parts, and three ways to hand work back."""

    queue: str
    consumer: str
    partitions: list[PartitionKeys]
    options: RuntimeOptions
    scripts: Scripts
    broker: Broker
    health: RedisHealth
    is_alive: Callable[[str], Awaitable[bool]] | None
    deliveries: Deliveries
    counters: RuntimeCounters
    paused: bool
    stopping: bool

    def free_slots(self) -> int: ...

    async def dispatch(self, batch: list[Delivery]) -> None: ...

    def queue_settlement(self, settlement: Settlement) -> None: ...


class Recovery:
    """Reclaims, quarantines and cleans up for one `ProcessorRuntime`."""

    def __init__(self, runtime: RecoveryHost) -> None:
        self.rt = runtime
        self._stale_cursors: dict[int, int] = {}
        _in_process.add(self)

    async def run(self) -> None:
        sweeps = 0
        while True:
            await anyio.sleep(self.rt.options.sweep_interval_s)
            if self.rt.stopping:
                return
            sweeps += 1
            await guarded(self.rt.health, "sweep", self.sweep_once, sweeps)

    async def sweep_once(self, sweeps: int) -> None:
        await self.reclaim_once()
        if sweeps % REAP_EVERY_SWEEPS == 0:
            await self.reap_consumers_once()
            await self.forget_stale_once()

    async def reclaim_once(self) -> int:
        """One sweep over every partition; returns how many entries were claimed."""
        rt, claimed_total = self.rt, 0
        for pk in rt.partitions:
            cursor = b"0-0"
            while not rt.paused and (budget := rt.free_slots()) > 0:
                room = self._reserve_suspect_room()
                sent = time.monotonic()
                try:
                    page = await rt.scripts.reclaim_idle(
                        pk, rt.consumer, min_idle_ms=rt.options.visibility_timeout_ms,
                        cursor=cursor, count=min(budget, 100),
                        max_deliveries=rt.options.max_deliveries,
                        suspect_deliveries=SUSPECT_DELIVERIES, suspect_room=room,
                    )  # fmt: skip
                    self._count_lost(pk, page.deleted)
                    claimed_total += await self._adopt(pk, page.claimed, sent)
                finally:
                    if room:
                        _Room.holder = None
                cursor = page.cursor
                if cursor == b"0-0":
                    break
        return claimed_total

    def _reserve_suspect_room(self) -> int:
        """1 when this sweep may take a repeat suspect, reserved until it is tracked.

        Process-wide, not per runtime: a poison job of one queue kills the jobs of
        every queue this process runs. The reservation is taken without awaiting, so
        two runtimes sweeping at once cannot both take one.
        """
        if _Room.holder is not None:
            return 0
        if any(r.holds_own_suspect() for r in _in_process):
            return 0
        _Room.holder = self
        return 1

    def holds_own_suspect(self) -> bool:
        top = self.rt.options.max_deliveries
        return any(SUSPECT_DELIVERIES <= d.deliveries <= top for d in self.rt.deliveries.held())

    def _count_lost(self, pk: PartitionKeys, deleted: list[bytes]) -> None:
        if deleted:
            self.rt.counters.lost += len(deleted)
            log.error("job.entries_lost", queue=self.rt.queue, partition=pk.partition,
                      count=len(deleted), entries=[e.decode() for e in deleted[:20]])  # fmt: skip

    async def _adopt(self, pk: PartitionKeys, claimed: list[Any], sent: float) -> int:
        fresh: list[Delivery] = []
        for c in claimed:
            d = Delivery(pk, c.entry_id, c.fields, deliveries=c.deliveries, leased_at=sent)
            d.decode()
            held = self.rt.deliveries.get(d.held_as)
            if held is not None:  # ours, still here: fenced and cancelled; `d` runs after it
                self.rt.deliveries.superseded(held, d)
            fresh.append(d)
        await self.admit(fresh)
        return len(claimed)

    async def admit(self, claimed: list[Delivery]) -> None:
        """Run reclaimed deliveries, or dead-letter them as poison (too many deliveries)."""
        rt = self.rt
        batch = self.quarantine(claimed)
        if batch:
            rt.counters.reclaimed += len(batch)
            log.info("job.reclaimed", queue=rt.queue, count=len(batch))
            await rt.dispatch(batch)

    def quarantine(self, deliveries: list[Delivery]) -> list[Delivery]:
        """Dead-letter the poison among `deliveries` (spent > MAX_DELIVERIES); the rest.

        Reads come here too: a job a repartition moved is read as a new entry, but
        carries the deliveries it had spent (`Delivery.spent`).
        """
        rt = self.rt
        batch: list[Delivery] = []
        poison: list[Delivery] = []
        for d in deliveries:
            (poison if d.spent > rt.options.max_deliveries else batch).append(d)
        if poison:
            rt.deliveries.taken(poison)
            self.dead_letter(poison)
        return batch

    def dead_letter(self, poison: list[Delivery]) -> None:
        """Dead-letter held deliveries that are poison (the read loop's too, `Deliveries.read`)."""
        for d in poison:
            reason = f"poison: delivered {d.spent} times without settling"
            self.rt.queue_settlement(dead(d, reason, failed=True, why=DeadReason.POISON))

    async def forget_stale_once(self, page: int = 200) -> int:
        """One page per partition of the walk that drops stale job-state records."""
        removed = 0
        for pk in self.rt.partitions:
            cursor = self._stale_cursors.get(pk.partition, 0)
            cursor, n = await self.rt.scripts.forget_stale(pk, cursor=cursor, count=page)
            self._stale_cursors[pk.partition] = cursor
            removed += n
        if removed:
            log.info("job.stale_records_removed", queue=self.rt.queue, count=removed)
        return removed

    async def reap_consumers_once(self) -> int:
        """Remove consumers of dead workers, only those with no pending entries."""
        rt, removed = self.rt, 0
        for pk in rt.partitions:
            for c in await rt.broker.consumers(pk):
                if c["name"] == rt.consumer or c["pending"] > 0:
                    continue
                if c["idle"] < rt.options.reap_idle_ms:
                    continue
                if rt.is_alive is not None and await rt.is_alive(c["name"]):
                    continue
                if await rt.scripts.remove_consumer(pk, c["name"]):
                    removed += 1
                    log.info("consumer.removed", queue=rt.queue, consumer=c["name"])
        return removed
