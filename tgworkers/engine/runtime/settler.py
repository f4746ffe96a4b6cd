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
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, Final, Protocol

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


GroupObserver = Callable[[SettleKind, Sequence[Settlement]], None]
"""Told once per settled group: settlements of one kind and one partition, in order."""

_DONE: Final = SettleKind.DONE
_LATER: Final = SettleKind.LATER
_DEAD: Final = SettleKind.DEAD
_DROP: Final = SettleKind.DROP


class Settler:
    """Sends one runtime's settlements in batches and tells its observers."""

    def __init__(self, runtime: SettleHost) -> None:
        self.rt = runtime
        self.pending: list[Settlement] = []
        self.observers: list[Callable[[Settlement], None]] = []
        """Called once per settle that went through (finish records)."""
        self.group_observers: list[GroupObserver] = []
        """Called once per group of settles that went through (telemetry): a batch's
        counts are fed in bulk, not a call per job."""
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
        dropped: list[Delivery] = []
        for group in self._groups(batch, table, dropped):
            first = group[0]
            send = functools.partial(self._send_group, first.delivery.pk, first.kind, group)
            refused: set[bytes] = await until_done(self.rt.health, send, "write")
            table.settled([s.delivery for s in group])
            self._observe(first.kind, group, refused)
        for lost in by_partition(dropped).values():
            # a lost run returned (or never ran): its key lock, if it still names it, is
            # released now rather than left to expire (promise 6; leases.py)
            release = functools.partial(
                self.rt.scripts.hold_locks, [held_lock(d) for d in lost], ttl_ms=0
            )
            await until_done(self.rt.health, release, "write")
        if not self.pending and self.rt.active == 0:
            self._settled_all.set()

    @staticmethod
    def _groups(
        batch: list[Settlement], table: Deliveries, dropped: list[Delivery]
    ) -> Iterable[list[Settlement]]:
        """`batch` by partition and kind, in order of first appearance; drops leave here.

        Keyed by the partition's identity, not its value: a frozen dataclass hashes its
        fields in Python on every lookup (once per job). The runtime hands each partition
        out as one object; an equal copy would only cost a script call of its own.
        """
        groups: dict[tuple[int, SettleKind], list[Settlement]] = {}
        last_pk: object = None
        last_kind: object = None
        group: list[Settlement] = []
        for s in batch:
            kind, d = s.kind, s.delivery
            if kind is _DROP:
                table.dropped(d)
                if d.lock is not None:
                    dropped.append(d)
                continue
            if d.pk is not last_pk or kind is not last_kind:  # most batches: one group
                last_pk, last_kind = d.pk, kind
                group = groups.setdefault((id(last_pk), kind), [])
            group.append(s)
        return groups.values()

    async def _send_group(
        self, pk: PartitionKeys, kind: SettleKind, group: list[Settlement]
    ) -> set[bytes]:
        rt = self.rt
        items: Any = [s.item for s in group]
        if kind is _DONE:
            ttl, held = rt.options.dedupe_ttl_ms, len(rt.deliveries)
            done = rt.scripts.settle_done
            return set(await done(pk, rt.consumer, items, dedupe_ttl_ms=ttl, held=held))
        if kind is _LATER:
            refused, earliest = await rt.scripts.settle_later(pk, rt.consumer, items)
            if earliest >= 0:
                rt.wake_promoter()
            return set(refused)
        if kind is _DEAD:
            return set(await rt.scripts.dead_letter(pk, rt.consumer, items))
        await rt.scripts.hand_back(pk, rt.consumer, items)
        return set()

    def _observe(self, kind: SettleKind, group: list[Settlement], refused: set[bytes]) -> None:
        """Count a settled group and tell the observers; refused settles are logged apart."""
        if refused:
            group = self._without_refused(group, refused)
            if not group:
                return
        self.rt.counters.settled(kind, len(group))
        for many in self.group_observers:
            many(kind, group)
        for observer in self.observers:
            for s in group:
                observer(s)
        if kind is _DEAD or kind is _LATER:
            self._log_each(kind, group)

    def _without_refused(self, group: list[Settlement], refused: set[bytes]) -> list[Settlement]:
        """The settles the fence let through; each refused one is counted and logged."""
        kept = []
        for s in group:
            d = s.delivery
            if d.entry_id not in refused:
                kept.append(s)
                continue
            self.rt.counters.settle_refused += 1
            log.warning("job.settle_refused", queue=self.rt.queue, job_id=d.job_id,
                        entry=d.entry_id.decode(), reason="ownership lost")  # fmt: skip
        return kept

    def _log_each(self, kind: SettleKind, group: list[Settlement]) -> None:
        """A line per job dead-lettered or retried (not per snooze)."""
        queue = self.rt.queue
        for s in group:
            d, dec = s.delivery, s.decision
            if kind is _DEAD:
                log.warning("job.dead_lettered", queue=queue, job_id=d.job_id,
                            job=d.envelope.name if d.envelope else None,
                            reason=dec.reason if dec else None)  # fmt: skip
            elif dec is not None and dec.record:
                log.info("job.retry_scheduled", queue=queue, job_id=d.job_id,
                         attempt=dec.record.attempt, error=dec.record.message,
                         delay_ms=dec.delay_ms)  # fmt: skip
