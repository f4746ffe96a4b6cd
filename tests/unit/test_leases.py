"""A lease verdict is about the delivery it was asked for, never a newer one of the entry.

Seen in the chaos suite (Redis paused past the visibility timeout): a renewal sent
during the pause carried the old delivery's token; our own sweep's reclaim ran first
when Redis woke, so the renewal answered "lost"; by the time that reply arrived the
reclaimed, newer delivery was running here under the same entry id, and losing *it*
stopped renewing its key's lock while it ran: another job of the key started beside it.
"""

from __future__ import annotations

from collections import Counter
from types import SimpleNamespace
from typing import Any, cast

from tgworkers.engine.runtime.broker import Delivery
from tgworkers.engine.runtime.leases import LeaseHost, Leases
from tgworkers.engine.wire.keys import PartitionKeys

ENTRY = b"1-0"
KEY = (0, ENTRY)


def _host(held: Delivery) -> Any:
    return SimpleNamespace(queue="q", consumer="w", owned={KEY: held}, counters=Counter[str]())


def _delivery(deliveries: int) -> Delivery:
    return Delivery(PartitionKeys("tgw", "q", 0), ENTRY, {}, deliveries=deliveries)


def test_a_verdict_about_an_older_delivery_leaves_the_newer_one_running() -> None:
    old, new = _delivery(1), _delivery(2)
    host = _host(new)
    Leases(cast(LeaseHost, host)).lose(KEY, delivery=old)
    assert host.owned == {KEY: new}
    assert not new.lost


def test_a_verdict_about_the_held_delivery_loses_it() -> None:
    held = _delivery(2)
    host = _host(held)
    Leases(cast(LeaseHost, host)).lose(KEY, delivery=held)
    assert host.owned == {}
    assert held.lost
    assert host.counters["lease_lost"] == 1


def test_the_watchdog_loses_whatever_it_holds() -> None:
    held = _delivery(1)
    host = _host(held)
    Leases(cast(LeaseHost, host)).lose(KEY, expired=True)
    assert held.lost
    assert host.counters["lease_expired"] == 1
