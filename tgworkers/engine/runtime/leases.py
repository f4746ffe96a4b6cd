"""The leases of the entries one runtime holds: renewal, the watchdog, lost runs' locks.

1. `run_renewals`: every VT/3 renews the lease (and exclusivity lock) of every
   entry held, fenced by each delivery's token; an entry another delivery owns now,
   or one deleted behind our back, is lost and its run cancelled;
2. `run_watchdog`: cancels, without asking Redis, every run whose renewals have not
   got through for VT less a margin and less its job type's clean-up budget
   (`JobType.cleanup_s`): Redis may hand its entry or lock to another worker VT after
   the last renewal *sent*, and the run's clean-up must end before then (promise 3,
   promise 6);
3. `hold_lost_locks`, in each renewal pass: a lost run whose coroutine has not
   returned (it awaits its clean-up) keeps its key lock while this process can
   reach Redis; the lock is released when it returns (the runtime's drop settle).
   A clean-up that outlasts its budget is logged (`job.cleanup_overran`).

Losing a delivery, and every other change of its state, is the delivery table's
transition (`Deliveries`, deliveries.py); this module decides when, from Redis's
verdicts and the clock.
"""

from __future__ import annotations

import time
from typing import Protocol

import anyio
import structlog

from tgworkers.engine.options import RuntimeOptions
from tgworkers.engine.runtime.counters import RuntimeCounters
from tgworkers.engine.runtime.deliveries import Deliveries, LostBy, by_partition
from tgworkers.engine.runtime.delivery import Delivery
from tgworkers.engine.wire.connection import RedisHealth, guarded
from tgworkers.engine.wire.script_items import HeldLock, LeaseItem
from tgworkers.engine.wire.scripts import Scripts

log = structlog.get_logger("tgworkers.engine")


class LeaseHost(Protocol):
    """What the leases need of the runtime whose entries they keep."""

    queue: str
    consumer: str
    options: RuntimeOptions
    scripts: Scripts
    health: RedisHealth
    deliveries: Deliveries
    counters: RuntimeCounters


def held_lock(d: Delivery) -> HeldLock:
    """`d`'s key lock as `hold_locks` takes it (only for a delivery with a lock)."""
    return HeldLock(d.lock or "", d.entry_id, d.token)


def out_of_budget(d: Delivery, options: RuntimeOptions, now: float) -> bool:
    """The watchdog's rule: `d`'s lease may end before a run's clean-up could (promise 6)."""
    return d.leased_at < now - options.run_budget_s(d.cleanup_s)


def too_old_to_wait(
    leased_at: float, cleanup_s: float, options: RuntimeOptions, now: float
) -> bool:
    """A lease from `leased_at` might pass the watchdog's limit before the next renewal pass.

    The watchdog's rule (`out_of_budget`) less one renewal interval and the margin: every
    delivery out of budget is too old to wait, so a batch with none too old has none out
    of budget either.
    """
    slack = options.lease_interval_s + options.margin_s
    return leased_at < now - options.run_budget_s(cleanup_s) + slack


class Leases:
    """Keeps (or gives up) the leases of one runtime's entries."""

    def __init__(self, runtime: LeaseHost) -> None:
        self.rt = runtime
        self._overran: set[Delivery] = set()  # lost runs reported still in their clean-up
        self._soon = anyio.Event()  # set: the next renewal pass is due now

    async def run_renewals(self) -> None:
        while True:
            with anyio.move_on_after(self.rt.options.lease_interval_s):
                await self._soon.wait()
            self._soon = anyio.Event()
            await guarded(self.rt.health, "lease", self.renew_once)

    def renew_soon_if_stale(self, deliveries: list[Delivery], now: float) -> None:
        """Renew now, not at the next pass, deliveries already too old to wait for it.

        A delivery's lease counts from when its read was *sent*; a read that blocked
        (BLOCK 1000 on an idle queue) hands out entries up to a second old. With a
        short VT and a long clean-up budget the next pass (up to VT/3 away) could come
        after the watchdog's limit and cancel a healthy run (the checker's seed 36, VT
        2 s and 0.6 s: cancelled 0.3 s after it started). Only such reads cost a pass
        earlier; at the default VT nothing read is ever that old.
        """
        options = self.rt.options
        if any(too_old_to_wait(d.leased_at, d.cleanup_s, options, now) for d in deliveries):
            self._soon.set()

    def all_fresh(self, oldest: float, cleanup_s: float, now: float) -> bool:
        """No delivery of a batch is stale nor out of budget: the per-delivery rules can wait.

        `oldest` is the batch's oldest `leased_at` and `cleanup_s` the longest clean-up
        among its job types: every delivery's lease is then at least as young, and its
        budget at least as long, as this one's, so neither `renew_soon_if_stale` nor
        `out_of_budget` would act on any (`too_old_to_wait`, one rule for both). Asked
        once per read batch instead of twice per delivery.
        """
        return not too_old_to_wait(oldest, cleanup_s, self.rt.options, now)

    async def renew_once(self) -> None:
        table = self.rt.deliveries
        for pk, group in table.by_partition().items():
            items = [LeaseItem(d.entry_id, d.job_id, d.lock, d.token) for d in group]
            sent = time.monotonic()
            lost, deleted = await self.rt.scripts.renew_leases(
                pk, self.rt.consumer, items, lock_ttl_ms=self.rt.options.visibility_timeout_ms
            )
            table.leased(group, sent)
            sent_for = {d.entry_id: d for d in group}
            for entry in lost:  # about the delivery we sent, never a newer one of the entry
                table.lose((pk.partition, entry), delivery=sent_for.get(entry))
            for entry in deleted:
                table.lose((pk.partition, entry), by=LostBy.DELETED, delivery=sent_for.get(entry))
        await self.hold_lost_locks()

    async def hold_lost_locks(self) -> None:
        """Extend the key locks of lost runs still in their clean-up (promise 6).

        Cancelling a run is a request: a handler may await a compensation before it
        re-raises, and until it returns no other run of its key may start, in this
        process (`Deliveries.begins`) or another (its lock). Each lock is extended only
        while it names that run's delivery: never taken back, never another's. One call
        per partition, and only when such runs exist: nothing is added to a job's path.
        """
        lost = self.rt.deliveries.lost_with_locks()
        if not lost:
            return
        now = time.monotonic()
        for d in lost:
            self.overrunning(d, now)
        ttl_ms = self.rt.options.visibility_timeout_ms
        for group in by_partition(lost).values():
            sent = time.monotonic()
            kept = await self.rt.scripts.hold_locks([held_lock(d) for d in group], ttl_ms=ttl_ms)
            self.rt.deliveries.leased([d for d, ok in zip(group, kept, strict=True) if ok], sent)

    def overrunning(self, d: Delivery, now: float) -> None:
        """Report, once, a lost run still in its clean-up past its budget."""
        if d.cancelled_at and now - d.cancelled_at > d.cleanup_s and d not in self._overran:
            self._overran.add(d)
            self._log_overran(d, now, running=True)

    def returned(self, d: Delivery) -> None:
        """A lost run's coroutine returned: report a clean-up that outlasted its terms.

        Its terms: within its job type's budget (`cleanup_s`) of its cancellation, and
        before its lock could have expired (VT after it was last renewed or extended:
        a process cut off from Redis, or whose event loop was blocked, past that).
        """
        now = time.monotonic()
        reported = d in self._overran
        self._overran.discard(d)
        lapsed = now > d.leased_at + self.rt.options.visibility_timeout_ms / 1000
        if reported or lapsed or now - d.cancelled_at > d.cleanup_s:
            self.rt.counters.cleanup_overran += 1
            self._log_overran(d, now, running=False, lock_lapsed=lapsed)

    def _log_overran(self, d: Delivery, now: float, *, running: bool, **extra: bool) -> None:
        took_ms, budget_ms = round((now - d.cancelled_at) * 1000), round(d.cleanup_s * 1000)
        log.warning("job.cleanup_overran", queue=self.rt.queue,
                    job=d.job_type.name if d.job_type else None, job_id=d.job_id,
                    took_ms=took_ms, budget_ms=budget_ms, running=running, **extra)  # fmt: skip

    async def run_watchdog(self) -> None:
        while True:
            await anyio.sleep(self.rt.options.watchdog_interval_s)
            self.expire()

    def expire(self) -> None:
        """Stop every run whose lease may be over in Redis before its clean-up; no Redis.

        When renewals cannot get through (Redis paused, failing over, unreachable),
        another worker may reclaim the entry, and another job of the same key may
        take its expired lock, VT after the last renewal *sent*. The run is cancelled
        before then, early enough for its job type's clean-up (`cleanup_s`), so a job
        or a key never runs twice at once; the entry stays pending and is recovered
        like any other once Redis answers.
        """
        now, options = time.monotonic(), self.rt.options
        self.rt.deliveries.expire(lambda d: out_of_budget(d, options, now))
