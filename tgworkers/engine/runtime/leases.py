"""The leases of the entries one runtime holds: renewal and the watchdog.

1. `run_renewals`: every VT/3 renews the lease (and exclusivity lock) of every
   entry held, fenced by each delivery's token; an entry another delivery owns now,
   or one deleted behind our back, is lost and its run cancelled;
2. `run_watchdog`: cancels, without asking Redis, every run whose renewals have not
   got through for VT less a margin: Redis may hand its entry or lock to another
   worker VT after the last renewal *sent* (promise 3, promise 6).

Losing a delivery is the delivery table's transition (`Deliveries.lose`); this module
decides when, from Redis's verdicts and the clock.
"""

from __future__ import annotations

import time
from typing import Protocol

import anyio

from tgworkers.engine.options import RuntimeOptions
from tgworkers.engine.runtime.deliveries import Deliveries, LostBy
from tgworkers.engine.wire.connection import RedisHealth, guarded
from tgworkers.engine.wire.script_items import LeaseItem
from tgworkers.engine.wire.scripts import Scripts


class LeaseHost(Protocol):
    """What the leases need of the runtime whose entries they keep."""

    consumer: str
    options: RuntimeOptions
    scripts: Scripts
    health: RedisHealth
    deliveries: Deliveries


class Leases:
    """Keeps (or gives up) the leases of one runtime's entries."""

    def __init__(self, runtime: LeaseHost) -> None:
        self.rt = runtime

    async def run_renewals(self) -> None:
        while True:
            await anyio.sleep(self.rt.options.lease_interval_s)
            await guarded(self.rt.health, "lease", self.renew_once)

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
        self.rt.deliveries.expire(time.monotonic() - self.rt.options.lease_budget_s)
