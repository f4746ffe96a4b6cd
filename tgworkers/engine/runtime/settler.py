"""The settle loop of one runtime: finished deliveries to Redis, in batches.

The consumers (and recovery, for poison) hand settlements to `add`; `run` wakes on
the first and sends everything pending with one script call per partition and kind
(`settle_once`), so a busy worker pays one round trip per batch, not per job. Every
script is fenced (promise 3): a settle the fence refuses is counted and logged, never
retried. A batch is retried on any error until it goes through (`until_done`): giving
up would leave entries this worker renews forever and never settles. A lost run that
held a key lock releases it with its drop (`hold_locks` with no TTL; leases.py keeps it
while the run is still in its clean-up).
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import anyio
import structlog

from tgworkers.engine.options import RuntimeOptions
from tgworkers.engine.runtime.counters import RuntimeCounters
from tgworkers.engine.runtime.deliveries import Deliveries, by_partition
from tgworkers.engine.runtime.delivery import Delivery
from tgworkers.engine.runtime.leases import held_lock
from tgworkers.engine.runtime.settlement import SettleKind, Settlement
from tgworkers.engine.wire.connection import REDIS_ERRORS, RedisHealth, guarded
from tgworkers.engine.wire.keys import PartitionKeys
from tgworkers.engine.wire.scripts import Scripts

log = structlog.get_logger("tgworkers.engine")


async def until_done(health: RedisHealth, op: Callable[[], Awaitable[Any]], loop: str) -> Any:
    """Run `op` until it succeeds, riding out any error with backoff (promise 13).

    Not only Redis errors: redis-py on uvloop raises `RuntimeError` for a write to a
    connection reset under it. Every op run this way is a fenced script (or group
    creation), so running it again after a success is harmless.
    """
    while True:
        try:
            result = await op()
        except REDIS_ERRORS as exc:
            health.failed(exc, loop)
            await health.backoff()
            continue
        except Exception as exc:  # noqa: BLE001 - retried, logged once a minute
            health.unexpected(loop, exc)
            await health.backoff()
            continue
        health.ok(loop)
        return result


class SettleHost(Protocol):
    """What settling needs of the runtime it serves."""

    queue: str
    consumer: str
    options: RuntimeOptions
    scripts: Scripts
    health: RedisHealth
    deliveries: Deliveries
    counters: RuntimeCounters
    active: int

    def wake_promoter(self) -> None: ...


class Settler:
    """Sends one runtime's settlements in batches and tells its observers."""

    def __init__(self, runtime: SettleHost) -> None:
        self.rt = runtime
        self.pending: list[Settlement] = []
        self.observers: list[Callable[[Settlement], None]] = []
        """Called once per settle that went through (finish records, telemetry)."""
        self._wake = anyio.Event()
        self._settled_all = anyio.Event()

    def add(self, settlement: Settlement) -> None:
        """A settlement to send with the next batch."""
        self.pending.append(settlement)
        self._wake.set()

    async def run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake = anyio.Event()
            await guarded(self.rt.health, "settle", self.settle_once)

    async def wait_idle(self) -> None:
        """Until nothing is buffered, running or waiting to be settled."""
        while self.rt.active > 0 or self.pending:
            self._settled_all = anyio.Event()
            await self._settled_all.wait()

    async def settle_once(self) -> None:
        """Send every pending settlement: one script call per partition and kind."""
        batch, self.pending = self.pending, []
        table = self.rt.deliveries
        groups: dict[tuple[PartitionKeys, SettleKind], list[Settlement]] = defaultdict(list)
        dropped: list[Delivery] = []
        for s in batch:
            if s.kind is SettleKind.DROP:
                table.dropped(s.delivery)
                if s.delivery.lock is not None:
                    dropped.append(s.delivery)
            else:
                groups[(s.delivery.pk, s.kind)].append(s)
        for (pk, kind), group in groups.items():
            send = functools.partial(self._send_group, pk, kind, group)
            refused: set[bytes] = await until_done(self.rt.health, send, "write")
            table.settled(s.delivery for s in group)
            for s in group:
                self._observe(s, refused=s.delivery.entry_id in refused)
        for lost in by_partition(dropped).values():
            # a lost run returned (or never ran): its key lock, if it still names it, is
            # released now rather than left to expire (promise 6; leases.py)
            release = functools.partial(
                self.rt.scripts.hold_locks, [held_lock(d) for d in lost], ttl_ms=0
            )
            await until_done(self.rt.health, release, "write")
        if not self.pending and self.rt.active == 0:
            self._settled_all.set()

    async def _send_group(
        self, pk: PartitionKeys, kind: SettleKind, group: list[Settlement]
    ) -> set[bytes]:
        rt = self.rt
        items: Any = [s.item for s in group]
        if kind is SettleKind.DONE:
            ttl, held = rt.options.dedupe_ttl_ms, len(rt.deliveries)
            done = rt.scripts.settle_done
            return set(await done(pk, rt.consumer, items, dedupe_ttl_ms=ttl, held=held))
        if kind is SettleKind.LATER:
            refused, earliest = await rt.scripts.settle_later(pk, rt.consumer, items)
            if earliest >= 0:
                rt.wake_promoter()
            return set(refused)
        if kind is SettleKind.DEAD:
            return set(await rt.scripts.dead_letter(pk, rt.consumer, items))
        await rt.scripts.hand_back(pk, rt.consumer, items)
        return set()

    def _observe(self, s: Settlement, *, refused: bool) -> None:
        d, queue = s.delivery, self.rt.queue
        if refused:
            self.rt.counters.settle_refused += 1
            log.warning("job.settle_refused", queue=queue, job_id=d.job_id,
                        entry=d.entry_id.decode(), reason="ownership lost")  # fmt: skip
            return
        self.rt.counters.settled(s.kind)
        for observer in self.observers:
            observer(s)
        if s.kind is SettleKind.DEAD:
            log.warning("job.dead_lettered", queue=queue, job_id=d.job_id,
                        job=d.envelope.name if d.envelope else None,
                        reason=s.decision.reason if s.decision else None)  # fmt: skip
        elif s.kind is SettleKind.LATER and s.decision and s.decision.record:
            log.info("job.retry_scheduled", queue=queue, job_id=d.job_id,
                     attempt=s.decision.record.attempt, error=s.decision.record.message,
                     delay_ms=s.decision.delay_ms)  # fmt: skip
