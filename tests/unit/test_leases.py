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
from hypothesis import given, settings, strategies as st
from structlog.testing import capture_logs

from tgworkers.engine import Done, JobContext, JobType, Outcome
from tgworkers.engine.options import RuntimeOptions
from tgworkers.engine.runtime.counters import RuntimeCounters
from tgworkers.engine.runtime.delivery import Delivery
from tgworkers.engine.runtime.leases import LeaseHost, Leases, out_of_budget
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


@settings(max_examples=300, deadline=None)
@given(
    vt_ms=st.integers(500, 120_000),
    ages=st.lists(st.floats(0, 200), min_size=1, max_size=5),
    cleanups=st.lists(st.floats(0, 1), min_size=1, max_size=3),
)
def test_a_batch_found_fresh_has_no_delivery_the_per_delivery_rules_would_act_on(
    vt_ms: int, ages: list[float], cleanups: list[float]
) -> None:
    """`all_fresh` (asked once per read batch) never skips a delivery that
    `renew_soon_if_stale` or the watchdog's `out_of_budget` would have acted on."""
    host, _ = _returning(0)
    host.options = RuntimeOptions(concurrency=1, visibility_timeout_ms=vt_ms, max_deliveries=3,
                                  dedupe_ttl_ms=1000)  # fmt: skip
    now = time.monotonic() + 1000
    batch = []
    for i, age in enumerate(ages):
        d = Delivery(PartitionKeys("tgw", "q", 0), b"%d-0" % i, {}, 1, now - age)
        d.job_type = JobType(name="t.comp", payload=Item, handler=_handle,
                             cleanup_s=cleanups[i % len(cleanups)])  # fmt: skip
        batch.append(d)
    leases = Leases(cast(LeaseHost, host))
    if not leases.all_fresh(min(d.leased_at for d in batch), max(cleanups), now):
        return
    leases.renew_soon_if_stale(batch, now)
    assert not leases._soon.is_set()
    assert not any(out_of_budget(d, host.options, now) for d in batch)


def test_a_stale_batch_is_not_fresh_a_fresh_one_is() -> None:
    host, _ = _returning(0)  # VT 2 s: budget 1.8 s less the clean-up, less VT/3 + margin
    leases, now = Leases(cast(LeaseHost, host)), time.monotonic()
    assert not leases.all_fresh(now - 1.0, 0.5, now)  # the read that blocked 1 s above
    assert leases.all_fresh(now - 0.1, 0.5, now)
    assert not leases.all_fresh(now - 0.7, 0.5, now)
    assert leases.all_fresh(now - 0.7, 0.0, now)


def test_derived_lease_times_follow_a_changed_visibility_timeout() -> None:
    options = RuntimeOptions(concurrency=1, visibility_timeout_ms=2000, max_deliveries=3,
                             dedupe_ttl_ms=1000)  # fmt: skip
    options.visibility_timeout_ms = 30_000
    fresh = RuntimeOptions(concurrency=1, visibility_timeout_ms=30_000, max_deliveries=3,
                           dedupe_ttl_ms=1000)  # fmt: skip
    derived = ("lease_interval_s", "margin_s", "lease_budget_s", "watchdog_interval_s")
    assert [getattr(options, n) for n in derived] == [getattr(fresh, n) for n in derived]
    assert options.run_budget_s(0.5) == pytest.approx(30 - 3 - 0.5)
