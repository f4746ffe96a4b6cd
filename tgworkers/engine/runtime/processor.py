"""One processor inside a worker: its loops, its concurrency and its settles.

Duties, each a named loop whose one-iteration body is testable on its own:
1. `_read_loop`: XREADGROUP over all partitions, as many entries as there are
   free slots; exclusive job types take their key locks first;
2. `_consume_loop` (x concurrency): runs deliveries through the executor; a
   delivery whose entry or key has a run here that has not returned yet (lost
   and cancelled, but still in its clean-up) waits for it (`Deliveries.begins`);
3. `Settler.run` (settler.py): sends finished settlements in batches (one script
   call per partition and kind), so a busy worker pays one round trip per batch;
4. `Leases` (leases.py): renews the lease of every entry this worker holds, every
   VT/3, cancels handlers whose entry another delivery took over, and (watchdog)
   those whose renewals have not got through in time;
5. `Recovery.run` (recovery.py): XAUTOCLAIM of entries idle past the visibility
   timeout, quarantine of poison jobs, counting of lost entries, consumer hygiene;
6. `Promoter` (promoter.py): moves due delayed jobs to the stream, sleeping exactly
   until the next due time (woken by Pub/Sub when an earlier one arrives).

Every change of a delivery's state goes through `self.deliveries` (deliveries.py).
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import anyio
import structlog
from anyio.abc import TaskGroup

from tgworkers.engine.options import RuntimeOptions
from tgworkers.engine.registry import JobType, Processor
from tgworkers.engine.runtime.broker import Broker
from tgworkers.engine.runtime.counters import RuntimeCounters
from tgworkers.engine.runtime.deliveries import Deliveries
from tgworkers.engine.runtime.delivery import Delivery, HeldAs
from tgworkers.engine.runtime.exclusive import exclusive_wait_ms, waiting_fields
from tgworkers.engine.runtime.executor import Executor
from tgworkers.engine.runtime.handoff import Handoff
from tgworkers.engine.runtime.leases import Leases, out_of_budget
from tgworkers.engine.runtime.promoter import Promoter
from tgworkers.engine.runtime.recovery import Recovery
from tgworkers.engine.runtime.settlement import Settlement
from tgworkers.engine.runtime.settler import Settler, until_done
from tgworkers.engine.telemetry.recorder import active as active_telemetry
from tgworkers.engine.wire.connection import REDIS_ERRORS, RedisHealth, guarded
from tgworkers.engine.wire.keys import PartitionKeys
from tgworkers.engine.wire.script_items import AcquireItem
from tgworkers.engine.wire.scripts import Scripts

log = structlog.get_logger("tgworkers.engine")


class ProcessorRuntime:
    """Runs one processor's queue on this worker (see the module docstring)."""

    def __init__(  # noqa: PLR0913 - wiring, built once by the worker
        self,
        *,
        processor: Processor,
        partitions: list[PartitionKeys],
        broker: Broker,
        scripts: Scripts,
        executor: Executor,
        options: RuntimeOptions,
        health: RedisHealth,
        is_alive: Callable[[str], Awaitable[bool]] | None = None,
    ) -> None:
        self.processor = processor
        self.queue = processor.queue
        self.partitions = partitions
        self.broker = broker
        self.scripts = scripts
        self.executor = executor
        self.options = options
        self.health = health
        self.is_alive = is_alive
        self.consumer = broker.consumer
        self.job_types: dict[str, JobType[Any]] = {jt.name: jt for jt in processor.job_types}
        self._longest_cleanup_s = max((jt.cleanup_s for jt in processor.job_types), default=0.0)
        self.paused = False
        self.stopping = False
        self.counters = RuntimeCounters()
        self.deliveries = Deliveries(self.queue, self.job_types, self.counters)
        """Every delivery held here and each change of its state (deliveries.py)."""
        executor.deliveries = self.deliveries
        self.active = 0
        self.running_consumers = 0
        self.last_progress = time.monotonic()
        # cleared, never replaced: several read loops (one per partition on a cluster)
        # may wait on it at once, and a replaced event would strand the others
        self._slot_freed = asyncio.Event()
        self._resumed = anyio.Event()
        self._handoff = Handoff(on_drained=self._slot_freed.set)  # to the consumers
        executor.on_wait = self._handoff.handler_waits
        self._tg: TaskGroup | None = None
        self.settler = Settler(self)
        self.observers: list[Callable[[Settlement], None]] = self.settler.observers
        self.recovery = Recovery(self)
        self.leases = Leases(self)
        self.promoter = Promoter(self)
        active_telemetry().track_runtime(self)  # settlement observer, entry counters

    # ------------------------------------------------------------------ lifecycle

    async def start(self, tg: TaskGroup) -> None:
        ensure = functools.partial(self.broker.ensure_groups, self.partitions)
        await until_done(self.health, ensure, "write")
        self._tg = tg
        for loop in (self.settler.run, self.leases.run_renewals, self.leases.run_watchdog):
            tg.start_soon(loop)
        # one XREADGROUP over every partition; on a cluster each partition is its own
        # slot, so each gets its own blocking reader
        groups = (
            [[pk] for pk in self.partitions]
            if self.options.read_per_partition
            else [self.partitions]
        )
        for pks in groups:
            tg.start_soon(self._read_loop, pks)
        tg.start_soon(self.recovery.run)
        tg.start_soon(self.promoter.run)
        self.set_concurrency(self.options.concurrency)

    def set_concurrency(self, n: int) -> None:
        """Grow now; shrink as consumers finish their current job (none dropped)."""
        self.options.concurrency = max(1, n)
        while self._tg is not None and self.running_consumers < self.options.concurrency:
            self.running_consumers += 1
            self._tg.start_soon(self._consume_loop)
        self._slot_freed.set()

    def set_paused(self, paused: bool) -> None:  # noqa: FBT001
        if self.paused and not paused:
            self._resumed.set()
            self._resumed = anyio.Event()
        self.paused = paused

    def wake_promoter(self) -> None:
        self.promoter.wake()

    def stop_reading(self) -> None:
        self.stopping = True
        self._slot_freed.set()
        self._resumed.set()

    @property
    def running(self) -> list[Delivery]:
        return self.deliveries.running()

    def cancel_running(self) -> None:
        """After the grace period: cancel handlers; their entries are handed back."""
        self.deliveries.hand_back_all()

    async def wait_idle(self) -> None:
        """Until nothing is buffered, running or waiting to be settled."""
        await self.settler.wait_idle()

    # ------------------------------------------------------------------ helpers

    def free_slots(self) -> int:
        return self.options.concurrency - self.active

    # ------------------------------------------------------------------ reading

    async def _read_loop(self, partitions: list[PartitionKeys]) -> None:
        while not self.stopping:
            await guarded(self.health, "read", self._read_once, partitions)

    async def _read_once(self, partitions: list[PartitionKeys] | None = None) -> None:
        if self.paused:
            with anyio.move_on_after(0.5):
                await self._resumed.wait()
            return
        free = self.free_slots()
        if free <= 0 or self._handoff.ready:
            # Deliveries not yet taken by a consumer go first (within a loop turn: each
            # slot has its consumer; the hand-off wakes this loop when the last is taken),
            # then one read asks for every free slot. Reading as soon as one slot frees
            # split a busy worker's reads and settles into two half batches that kept
            # alternating: twice the round trips per job.
            self._slot_freed.clear()
            if self.free_slots() <= 0 or self._handoff.ready:
                await self._slot_freed.wait()
            return
        sent = time.monotonic()
        try:
            batch = await self.broker.read(
                partitions or self.partitions,
                count=free,
                block_ms=self.options.block_ms,
                sent=sent,
            )
        except REDIS_ERRORS as exc:
            self.health.failed(exc, "read")
            await self.health.backoff()
            return
        self.health.ok("read")
        self.last_progress = time.monotonic()
        if batch:
            run, poison, locking = self.deliveries.read(batch, self.options.max_deliveries)
            if poison:  # a moved job may be poison
                self.recovery.dead_letter(poison)
            if run:
                await self._hand_out(run, sent, locking=locking)

    async def dispatch(self, batch: list[Delivery]) -> None:
        """Hand reclaimed deliveries to the consumers (locks taken first)."""
        if not batch:
            return
        self.deliveries.taken(batch)
        oldest = min(d.leased_at for d in batch)
        await self._hand_out(batch, oldest, locking=any(d.lock is not None for d in batch))

    async def _hand_out(self, batch: list[Delivery], oldest: float, *, locking: bool) -> None:
        """Held deliveries to the consumers, their key locks taken first (`locking`).

        `oldest` is the batch's oldest lease (a read's send time): one look at it tells
        whether any delivery's lease is old enough for the per-delivery rules (a read
        that blocked long, a stall); they are asked only then.
        """
        runnable = await self._take_locks(batch) if locking else batch
        self.active += len(runnable)
        now = time.monotonic()
        if not self.leases.all_fresh(oldest, self._longest_cleanup_s, now):
            self.leases.renew_soon_if_stale(runnable, now)
            for d in runnable:
                if out_of_budget(d, self.options, now):  # claimed too long ago (a stall)
                    self.deliveries.expired_queued(d)
                elif self.paused or self.stopping:
                    self.deliveries.hand_back((d,))
        elif self.paused or self.stopping:
            self.deliveries.hand_back(runnable)
        self._handoff.put(runnable)

    async def _take_locks(self, batch: list[Delivery]) -> list[Delivery]:
        needing = [d for d in batch if d.lock is not None]
        if not needing:
            return batch
        by_pk: dict[PartitionKeys, list[Delivery]] = defaultdict(list)
        for d in needing:
            by_pk[d.pk].append(d)
        refused: set[HeldAs] = set()
        for pk, group in by_pk.items():
            items = [
                AcquireItem(
                    d.entry_id,
                    d.job_id,
                    d.lock or "",
                    waiting_fields(d),
                    d.token,
                    exclusive_wait_ms(d.envelope.waits if d.envelope else 0),
                )
                for d in group
            ]
            acquire = functools.partial(
                self.scripts.acquire_keys, pk, self.consumer, items,
                lock_ttl_ms=self.options.visibility_timeout_ms,
            )  # fmt: skip
            verdicts: list[int] = await until_done(self.health, acquire, "write")
            for d, verdict in zip(group, verdicts, strict=True):
                if verdict != 1:
                    refused.add(d.held_as)
                    self.deliveries.key_refused(d, waits=verdict == 0)
        if refused:
            self.promoter.wake()
        return [d for d in batch if d.held_as not in refused]

    # ------------------------------------------------------------------ consuming

    async def _consume_loop(self) -> None:
        handoff = self._handoff
        handoff.joined()
        try:
            while self.running_consumers <= self.options.concurrency:
                d = handoff.pop() if handoff.ready else await handoff.take()
                if self.running_consumers > self.options.concurrency:
                    # concurrency was lowered while this consumer slept: it leaves, and the
                    # delivery goes back first in line for the consumers that stay
                    handoff.put_back(d)
                    return
                # `_consume_once`, with no coroutine for a run that never waits
                if (rest := self._consume_now(d)) is not None:
                    await rest
        finally:
            handoff.left()
            self.running_consumers -= 1

    async def _consume_once(self, d: Delivery) -> None:
        """Run (or drop, hand back, park) one delivery a consumer took, and settle it."""
        if (rest := self._consume_now(d)) is not None:
            await rest

    def _consume_now(self, d: Delivery) -> Coroutine[Any, Any, None] | None:
        """`_consume_once` up to its run's first wait: None when it ended here (most runs)."""
        table = self.deliveries
        if self.stopping and d.timeout is None:  # not running
            table.hand_back((d,))
        if d.timeout is None and not d.lost and out_of_budget(d, self.options, time.monotonic()):
            # the watchdog's rule, checked as a consumer takes it: a delivery that waited
            # here through a stall (a blocked loop) may be another worker's by now, and the
            # watchdog's next pass would cancel it only after its handler began
            table.expired_taken(d)
        runs = not (d.lost or d.handback)  # a lost delivery is dropped, a handed-back one not run
        if runs and table.begins(d) is not None:
            return None  # parked: handed out again when the run it waits for returns
        try:
            result = self.executor.begin(d)
        except BaseException:
            self._returned(d, runs=runs)
            raise
        if not isinstance(result, Settlement):  # it waits: `_consume_rest` ends it
            return self._consume_rest(d, result, runs=runs)
        self._returned(d, runs=runs)
        self._settle(d, result)
        return None

    async def _consume_rest(self, d: Delivery, rest: Awaitable[Settlement], *, runs: bool) -> None:
        try:
            settlement = await rest
        finally:
            self._returned(d, runs=runs)
        self._settle(d, settlement)

    def _returned(self, d: Delivery, *, runs: bool) -> None:
        """`d`'s run returned (or raised): its slot is free, runs parked behind it go out."""
        self.active -= 1
        self._slot_freed.set()
        if runs and (behind := self.deliveries.ended(d)):
            self._handoff.put(behind)
        if d.lost and d.cancelled_at:  # its lock is released with its drop (settler.py)
            self.leases.returned(d)

    def _settle(self, d: Delivery, settlement: Settlement) -> None:
        self.last_progress = time.monotonic()
        self.deliveries.settling(d)
        self.settler.add(settlement)

    def queue_settlement(self, settlement: Settlement) -> None:
        """Hand a settlement made outside the consumers (poison) to the settle loop."""
        self.settler.add(settlement)
