"""The leases of the entries one runtime holds: renewal, the watchdog, and losing one.

1. `run_renewals`: every VT/3 renews the lease (and exclusivity lock) of every
   entry held, fenced by each delivery's token; an entry another delivery owns now,
   or one deleted behind our back, is lost and its run cancelled;
2. `run_watchdog`: cancels, without asking Redis, every run whose renewals have not
   got through for VT less a margin: Redis may hand its entry or lock to another
   worker VT after the last renewal *sent* (promise 3, promise 6).
"""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Protocol

import anyio
import structlog

from tgworkers.engine.options import RuntimeOptions
from tgworkers.engine.runtime.broker import Delivery
from tgworkers.engine.wire.connection import RedisHealth, guarded
from tgworkers.engine.wire.keys import PartitionKeys
from tgworkers.engine.wire.scripts import LeaseItem, Scripts

log = structlog.get_logger("tgworkers.engine")


class LeaseHost(Protocol):
    """What the leases need of the runtime whose entries they keep."""

    queue: str
    consumer: str
    options: RuntimeOptions
    scripts: Scripts
    health: RedisHealth
    owned: dict[tuple[int, bytes], Delivery]
    counters: dict[str, int]


class Leases:
    """Keeps (or gives up) the leases of one runtime's entries."""

    def __init__(self, runtime: LeaseHost) -> None:
        self.rt = runtime

    async def run_renewals(self) -> None:
        while True:
            await anyio.sleep(self.rt.options.lease_interval_s)
            await guarded(self.rt.health, "lease", self.renew_once)

    async def renew_once(self) -> None:
        by_pk: dict[PartitionKeys, list[Delivery]] = defaultdict(list)
        for d in list(self.rt.owned.values()):
            by_pk[d.pk].append(d)
        for pk, group in by_pk.items():
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

    async def run_watchdog(self) -> None:
        while True:
            await anyio.sleep(min(self.rt.options.lease_budget_s / 4, 0.25))
            self.expire()

    def expire(self) -> None:
        """Stop every run whose lease may be over in Redis; touches no Redis.

        When renewals cannot get through (Redis paused, failing over, unreachable),
        another worker may reclaim the entry, and another job of the same key may
        take its expired lock, VT after the last renewal *sent*. The run is cancelled
        before then, so a job or a key never runs twice at once; the entry stays
        pending and is recovered like any other once Redis answers.
        """
        limit = time.monotonic() - self.rt.options.lease_budget_s
        for d in list(self.rt.owned.values()):
            if d.leased_at < limit and not d.settling and not d.lost:
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
