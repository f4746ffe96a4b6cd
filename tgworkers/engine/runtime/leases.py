"""The leases of the entries one runtime holds: renewal, the watchdog, and losing one.

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
"""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Protocol

import anyio
import structlog

from tgworkers.engine.options import RuntimeOptions
from tgworkers.engine.runtime.broker import Delivery
from tgworkers.engine.runtime.unfinished import Unfinished
from tgworkers.engine.wire.connection import RedisHealth, guarded
from tgworkers.engine.wire.keys import PartitionKeys
from tgworkers.engine.wire.scripts import HeldLock, LeaseItem, Scripts

log = structlog.get_logger("tgworkers.engine")


class LeaseHost(Protocol):
    """What the leases need of the runtime whose entries they keep."""

    queue: str
    consumer: str
    options: RuntimeOptions
    scripts: Scripts
    health: RedisHealth
    owned: dict[tuple[int, bytes], Delivery]
    unfinished: Unfinished
    counters: dict[str, int]


def held_lock(d: Delivery) -> HeldLock:
    """`d`'s key lock as `hold_locks` takes it (only for a delivery with a lock)."""
    return HeldLock(d.lock or "", d.entry_id, d.token)


def by_partition(deliveries: list[Delivery]) -> dict[PartitionKeys, list[Delivery]]:
    groups: dict[PartitionKeys, list[Delivery]] = defaultdict(list)
    for d in deliveries:
        groups[d.pk].append(d)
    return groups


def out_of_budget(d: Delivery, options: RuntimeOptions, now: float) -> bool:
    """The watchdog's rule: `d`'s lease may end before a run's clean-up could (promise 6)."""
    return d.leased_at < now - options.run_budget_s(d.cleanup_s)


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
        slack = options.lease_interval_s + options.margin_s
        if any(d.leased_at < now - options.run_budget_s(d.cleanup_s) + slack for d in deliveries):
            self._soon.set()

    async def renew_once(self) -> None:
        for pk, group in by_partition(list(self.rt.owned.values())).items():
            items = [LeaseItem(d.entry_id, d.job_id, d.lock, d.token) for d in group]
            sent = time.monotonic()
            lost, deleted = await self.rt.scripts.renew_leases(
                pk, self.rt.consumer, items, lock_ttl_ms=self.rt.options.visibility_timeout_ms
            )
            for d in group:
                d.leased_at = max(d.leased_at, sent)
            sent_for = {d.entry_id: d for d in group}
            for entry in lost:  # about the delivery we sent, never a newer one of the entry
                self.lose((pk.partition, entry), delivery=sent_for.get(entry))
            for entry in deleted:
                self.lose((pk.partition, entry), deleted=True, delivery=sent_for.get(entry))
        await self.hold_lost_locks()

    async def hold_lost_locks(self) -> None:
        """Extend the key locks of lost runs still in their clean-up (promise 6).

        Cancelling a run is a request: a handler may await a compensation before it
        re-raises, and until it returns no other run of its key may start, in this
        process (`Unfinished`) or another (its lock). Each lock is extended only while
        it names that run's delivery: never taken back, never another's. One call per
        partition, and only when such runs exist: nothing is added to a job's path.
        """
        lost = self.rt.unfinished.lost_with_locks()
        if not lost:
            return
        now = time.monotonic()
        for d in lost:
            self.overrunning(d, now)
        ttl_ms = self.rt.options.visibility_timeout_ms
        for group in by_partition(lost).values():
            sent = time.monotonic()
            kept = await self.rt.scripts.hold_locks([held_lock(d) for d in group], ttl_ms=ttl_ms)
            for d, ok in zip(group, kept, strict=True):
                if ok:
                    d.leased_at = max(d.leased_at, sent)

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
            self.rt.counters["cleanup_overran"] += 1
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
        for d in list(self.rt.owned.values()):
            if not d.settling and not d.lost and out_of_budget(d, options, now):
                self.lose(d.held_as, expired=True)

    def lose(
        self,
        key: tuple[int, bytes],
        *,
        deleted: bool = False,
        expired: bool = False,
        delivery: Delivery | None = None,
    ) -> None:
        """Give up our delivery of the entry `key` (`Delivery.held_as`), if it is `delivery`.

        `delivery` is given when the verdict is about one (a renewal's). Its reply can
        arrive after our own sweep reclaimed the entry and a newer delivery took its
        place here (a Redis pause queues both): the verdict was about the older token,
        and losing the newer delivery would stop renewing a run that holds its key's
        lock, letting another job of the key start beside it.
        """
        d = self.rt.owned.get(key)
        if d is None or (delivery is not None and d is not delivery):
            return
        if d.settling and not deleted:
            return  # being settled right now: the settle script decides, fenced
        del self.rt.owned[key]
        entry = d.entry_id
        d.lost = True
        if deleted:  # counted in the stats hash by the script
            self.rt.counters["lost"] += 1
            log.error("job.entries_lost", queue=self.rt.queue, partition=d.pk.partition, count=1,
                      entries=[entry.decode()], job_id=d.job_id, while_held=True)  # fmt: skip
        elif expired:
            self.rt.counters["lease_expired"] += 1
            log.warning("job.lease_lost", queue=self.rt.queue, job_id=d.job_id,
                        entry=entry.decode(), reason="expired", running=d.running)  # fmt: skip
        else:
            self.rt.counters["lease_lost"] += 1
            log.warning(
                "job.lease_lost", queue=self.rt.queue, job_id=d.job_id, entry=entry.decode()
            )
        d.cancel()
