"""A lost run's clean-up is reported when it outlasts its budget or its lock.

Losing a delivery itself is the delivery table's (`tests/unit/test_deliveries.py`).
These tests build a lost run's past (when it was cancelled, last renewed) directly on
the delivery, which only the table may do in the engine (`FIXTURES` there).
"""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any, cast

import msgspec
import pytest
from structlog.testing import capture_logs

from tgworkers.engine import Done, JobContext, JobType, Outcome
from tgworkers.engine.options import RuntimeOptions
from tgworkers.engine.runtime.counters import RuntimeCounters
from tgworkers.engine.runtime.delivery import Delivery
from tgworkers.engine.runtime.leases import LeaseHost, Leases
from tgworkers.engine.wire.keys import PartitionKeys


class Item(msgspec.Struct, frozen=True):
    key: str


async def _handle(ctx: JobContext, p: Item) -> Outcome:
    return Done()


def _returning(cancelled_s_ago: float, *, renewed_s_ago: float = 0.0) -> tuple[Any, Delivery]:
    """A lost run of a job type with a 0.5 s clean-up budget, about to return."""
    d = Delivery(PartitionKeys("tgw", "q", 0), b"1-0", {})
    d.job_type = JobType(name="t.comp", payload=Item, handler=_handle, cleanup_s=0.5)
    d.lost = True
    now = time.monotonic()
    d.cancelled_at, d.leased_at = now - cancelled_s_ago, now - renewed_s_ago
    options = RuntimeOptions(concurrency=1, visibility_timeout_ms=2000, max_deliveries=3,
                             dedupe_ttl_ms=1000)  # fmt: skip
    return SimpleNamespace(queue="q", options=options, counters=RuntimeCounters()), d


def test_a_lost_run_back_within_its_clean_up_budget_is_not_reported() -> None:
    host, d = _returning(0.2)
    with capture_logs() as logs:
        Leases(cast(LeaseHost, host)).returned(d)
    assert logs == []
    assert host.counters.cleanup_overran == 0


def test_a_lost_run_back_after_its_budget_or_its_lock_is_reported() -> None:
    for took, renewed, lapsed in ((0.8, 0.8, False), (0.2, 2.5, True)):
        host, d = _returning(took, renewed_s_ago=renewed)
        with capture_logs() as logs:
            Leases(cast(LeaseHost, host)).returned(d)
        (event,) = logs
        assert event["event"] == "job.cleanup_overran"
        assert event["job"] == "t.comp" and event["budget_ms"] == 500
        assert event["took_ms"] == pytest.approx(took * 1000, abs=50)
        assert event["lock_lapsed"] is lapsed and event["running"] is False
        assert host.counters.cleanup_overran == 1


def test_a_read_that_blocked_long_enough_to_miss_the_watchdog_renews_at_once() -> None:
    # VT 2 s less a 0.2 s margin less a 0.5 s budget: 1.3 s, of which the next pass may
    # take VT/3 and the margin; a delivery whose read was sent 1 s ago cannot wait for it
    host, stale = _returning(0)
    leases = Leases(cast(LeaseHost, host))
    now = time.monotonic()
    stale.leased_at = now - 1.0
    leases.renew_soon_if_stale([stale], now)
    assert leases._soon.is_set()
    fresh = Leases(cast(LeaseHost, host))
    stale.leased_at = now - 0.1
    fresh.renew_soon_if_stale([stale], now)
    assert not fresh._soon.is_set()
