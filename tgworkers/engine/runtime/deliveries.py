"""The deliveries one processor runtime holds, and every change of their state.

`Deliveries` is the one owner of delivery state in a runtime: the held map (what this
worker renews, by `Delivery.held_as`), the runs that have started and not returned
(`Unfinished`, unfinished.py), and the mutable fields of each `Delivery`. The read
loop, consumers, executor, settle loop, leases and recovery ask it through named
transitions, in the order a delivery meets them:

    taken / read ─▶ (leased …) ─▶ begins ─▶ waits / returned ─▶ ended ─▶ settling ─▶ settled
      │                             └─ parked behind an unfinished run, handed out again at its end
      └─▶ lost (renewal verdict, deleted, expired, fenced) / superseded / handed back

A lost or handed-back delivery still goes through the consumer and the settle loop
(dropped, or handed back whole), so a lost run is listed until its coroutine returns.
Transitions take lists where their callers have batches (a read, a sweep's page, a
renewal's group); a read batch is taken in one pass (`read`: decoded, held, typed,
locked, poison set apart), the batch as the unit of work (issue 25).
"""

from __future__ import annotations

import asyncio
import enum
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import structlog

from tgworkers.engine.runtime.counters import RuntimeCounters
from tgworkers.engine.runtime.delivery import Delivery, HeldAs
from tgworkers.engine.runtime.unfinished import Unfinished
from tgworkers.engine.wire.keys import PartitionKeys

if TYPE_CHECKING:
    from tgworkers.engine.registry import JobType

log = structlog.get_logger("tgworkers.engine")


def by_partition(deliveries: Iterable[Delivery]) -> dict[PartitionKeys, list[Delivery]]:
    """`deliveries` grouped as the per-partition scripts take them."""
    groups: dict[PartitionKeys, list[Delivery]] = defaultdict(list)
    for d in deliveries:
        groups[d.pk].append(d)
    return groups


class LostBy(enum.Enum):
    """Why a held delivery was given up (its counter and log line)."""

    RENEWAL = "renewal"
    """A renewal said another delivery owns the entry now (`lease_lost`)."""
    DELETED = "deleted"
    """The entry was deleted behind our back (`lost`, counted in Redis by the script)."""
    EXPIRED = "expired"
    """Not renewed for the lease budget: Redis may hand it on (`lease_expired`)."""


class Deliveries:
    """Every delivery one runtime holds, the runs still finishing, and their transitions."""

    def __init__(
        self,
        queue: str,
        job_types: Mapping[str, JobType[Any]] | None = None,
        counters: RuntimeCounters | None = None,
    ) -> None:
        self.queue = queue
        self.job_types: Mapping[str, JobType[Any]] = job_types or {}
        self.counters = counters or RuntimeCounters()
        self._held: dict[HeldAs, Delivery] = {}
        self._unfinished = Unfinished()

    # ------------------------------------------------------------------ views

    def __len__(self) -> int:
        return len(self._held)

    def get(self, key: HeldAs) -> Delivery | None:
        """The delivery of entry `key` this runtime holds now, if any."""
        return self._held.get(key)

    def held(self) -> list[Delivery]:
        """A snapshot of the deliveries held (safe to transition while iterating)."""
        return list(self._held.values())

    def running(self) -> list[Delivery]:
        """Held deliveries whose handler is waiting (under its timeout) right now."""
        return [d for d in self._held.values() if d.running]

    def by_partition(self) -> dict[PartitionKeys, list[Delivery]]:
        """The held deliveries, grouped as the per-partition scripts take them."""
        return by_partition(self._held.values())

    def lost_with_locks(self) -> list[Delivery]:
        """Lost runs that have not returned and hold a key lock: theirs to keep (promise 6)."""
        return self._unfinished.lost_with_locks()

    # ------------------------------------------------------------------ taking

    def taken(self, batch: Iterable[Delivery]) -> None:
        """Read or claimed: held from now on (renewed), with its job type and key lock.

        A delivery whose claim's send time is unknown is leased from now.
        """
        now = time.monotonic()
        for d in batch:
            d.leased_at = d.leased_at or now
            self._held[d.held_as] = d
            if d.envelope is not None:
                d.job_type = self.job_types.get(d.envelope.name)
                if d.job_type is not None and d.job_type.exclusive:
                    d.lock = d.pk.lock(d.envelope.key or d.envelope.id)

    def read(
        self, batch: list[Delivery], max_deliveries: int
    ) -> tuple[list[Delivery], list[Delivery], bool]:
        """A read's new entries, in one pass: each decoded and `taken`, poison set apart.

        Returns (to run, poison, whether any of those to run takes a key lock first).
        What `Delivery.decode`, `Recovery.quarantine` and `taken` do batch by batch, done
        entry by entry in one loop: the read batch is the unit of work (issue 25). Each
        delivery's lease counts from its read's send time, given when it was built
        (`Broker.read`). Poison is a job a repartition moved after it had spent its
        deliveries (`Delivery.spent`); it is held too, to be dead-lettered.
        """
        held, job_types = self._held, self.job_types
        run: list[Delivery] = []
        poison: list[Delivery] = []
        locking = False
        for d in batch:
            held[d.held_as] = d
            env = d.decode()
            if env is not None:
                jt = d.job_type = job_types.get(env.name)
                if jt is not None and jt.exclusive:
                    d.lock = d.pk.lock(env.key or env.id)
                    locking = True
            # `d.spent > max_deliveries`, its property read only when it can differ
            # from the count (a moved job)
            if (d.deliveries > max_deliveries or b"moved_deliveries" in d.fields) and (
                d.spent > max_deliveries
            ):
                poison.append(d)
            else:
                run.append(d)
        return run, poison, locking

    def leased(self, batch: Iterable[Delivery], sent: float) -> None:
        """A claim or renewal of `batch` was sent at `sent` (monotonic): its lease runs VT on."""
        for d in batch:
            d.leased_at = max(d.leased_at, sent)

    def key_refused(self, d: Delivery, *, waits: bool) -> None:
        """`acquire_keys` said no: not held any more, never runs here.

        Its key is held (`waits`: the script parked it in the delayed set), or the entry
        is no longer ours.
        """
        self._forget(d)
        if waits:
            self.counters.exclusive_waits += 1
        else:
            self.counters.lease_lost += 1

    def hand_back(self, batch: Iterable[Delivery]) -> None:
        """Not to run (pause, shutdown): each goes back to the queue whole, unrun."""
        for d in batch:
            d.handback = True

    def hand_back_all(self) -> None:
        """After the shutdown grace: every held run is cancelled and handed back."""
        for d in self.held():
            d.handback = True
            d.cancel()

    # ------------------------------------------------------------------ losing

    def lose(
        self, key: HeldAs, *, by: LostBy = LostBy.RENEWAL, delivery: Delivery | None = None
    ) -> None:
        """Give up our delivery of entry `key`, if it is `delivery`: forgotten, cancelled.

        `delivery` is given when the verdict is about one (a renewal's). Its reply can
        arrive after our own sweep reclaimed the entry and a newer delivery took its
        place here (a Redis pause queues both): the verdict was about the older token,
        and losing the newer delivery would stop renewing a run that holds its key's
        lock, letting another job of the key start beside it.
        """
        d = self._held.get(key)
        if d is None or (delivery is not None and d is not delivery):
            return
        if d.settling and by is not LostBy.DELETED:
            return  # being settled right now: the settle script decides, fenced
        del self._held[key]
        d.lost = True
        entry = d.entry_id.decode()
        if by is LostBy.DELETED:  # counted in the stats hash by the script
            self.counters.lost += 1
            log.error("job.entries_lost", queue=self.queue, partition=d.pk.partition, count=1,
                      entries=[entry], job_id=d.job_id, while_held=True)  # fmt: skip
        elif by is LostBy.EXPIRED:
            self.counters.lease_expired += 1
            log.warning("job.lease_lost", queue=self.queue, job_id=d.job_id,
                        entry=entry, reason="expired", running=d.running)  # fmt: skip
        else:
            self.counters.lease_lost += 1
            log.warning("job.lease_lost", queue=self.queue, job_id=d.job_id, entry=entry)
        d.cancel()

    def expire(self, out_of_budget: Callable[[Delivery], bool]) -> None:
        """The watchdog: lose, unasked, every run whose lease may end before its clean-up."""
        for d in self.held():
            if not d.settling and not d.lost and out_of_budget(d):
                self.lose(d.held_as, by=LostBy.EXPIRED)

    def expired_queued(self, d: Delivery) -> None:
        """Claimed too long ago as it is dispatched (a stall): someone may hold it now.

        Still held (its settle drops it, counted then); it never runs.
        """
        d.lost = True
        log.warning("job.lease_lost", queue=self.queue, job_id=d.job_id,
                    entry=d.entry_id.decode(), reason="expired", running=False)  # fmt: skip

    def expired_taken(self, d: Delivery) -> None:
        """The watchdog's rule, applied as a consumer takes `d`: lost, never started."""
        self.lose(d.held_as, by=LostBy.EXPIRED, delivery=d)
        d.lost = True

    def fenced(self, d: Delivery) -> None:
        """A fenced script refused this delivery mid-run (its step record): lost.

        Its settle would be refused too; it stays held until that settle drops it.
        """
        d.lost = True

    def superseded(self, old: Delivery, new: Delivery) -> None:
        """Our own sweep reclaimed an entry `old` still holds: `new` takes its place.

        This process stalled past the visibility timeout (event loop blocked, Redis
        paused). `old` is fenced by the new token and cancelled; `new` is dispatched
        like any delivery and, like any, runs only once `old`'s coroutine has
        returned (`begins`), so the job never runs twice at once here.
        """
        self._forget(old)
        old.lost = True
        self.counters.superseded += 1
        log.warning("job.superseded", queue=self.queue, job_id=old.job_id,
                    entry=old.entry_id.decode(), deliveries=new.deliveries)  # fmt: skip
        old.cancel()

    # ------------------------------------------------------------------ running

    def begins(self, d: Delivery) -> Delivery | None:
        """`d`'s run begins, unless a run of its entry or key has not returned here.

        Returns that run: `d` is parked behind it (counted, `job.waits_for_unfinished`)
        and comes back from `ended` of that run.
        """
        blocker = self._unfinished.start(d)
        if blocker is not None:
            self.counters.waited_unfinished += 1
            log.warning("job.waits_for_unfinished", queue=self.queue, job_id=d.job_id,
                        entry=d.entry_id.decode(), unfinished_job_id=blocker.job_id,
                        unfinished_entry=blocker.entry_id.decode())  # fmt: skip
        return blocker

    def waits(self, d: Delivery, timeout: asyncio.Timeout) -> None:
        """The handler waits under `timeout`: `running`, and cancellable (`Delivery.cancel`)."""
        d.timeout = timeout

    def returned(self, d: Delivery) -> None:
        """The handler returned or raised: no longer cancellable."""
        d.timeout = None

    def interrupt(self, d: Delivery) -> None:
        """An operator cancelled its run: its handler is interrupted now.

        It stays held; the executor dead-letters it, naming who cancelled it.
        """
        d.cancel()

    def failed(self, d: Delivery, error: BaseException) -> None:
        """The handler raised `error` (telemetry's error.type)."""
        d.error_type = type(error).__name__

    def ended(self, d: Delivery) -> list[Delivery] | None:
        """`d`'s coroutine returned: the deliveries parked behind it, to hand out again."""
        return self._unfinished.end(d)

    # ------------------------------------------------------------------ settling

    def settling(self, d: Delivery) -> None:
        """Its settlement is built: from now on only the settle script decides its fate."""
        d.settling = True

    def settled(self, batch: Iterable[Delivery]) -> None:
        """Settled (or refused by the fence): not held any more."""
        for d in batch:
            self._forget(d)

    def dropped(self, d: Delivery) -> None:
        """A lost delivery leaves unsettled (someone else owns its entry)."""
        self._forget(d)
        self.counters.lease_lost += 1

    def _forget(self, d: Delivery) -> None:
        """Stop holding `d`, never a newer delivery of the same entry."""
        if self._held.get(d.held_as) is d:
            del self._held[d.held_as]
