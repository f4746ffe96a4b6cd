"""Settled jobs are counted per group, with the same numbers as one job at a time.

The settle loop tells telemetry once per group (one partition, one kind): the outcome
counts and the duration samples must be what the per-job observer made of the same
settlements, a failed, errored or envelope-less job included.
"""

from __future__ import annotations

from dataclasses import dataclass

from tgworkers.engine.outcome import DeadReason, Disposition
from tgworkers.engine.retry import DONE, Decision
from tgworkers.engine.runtime.counters import RuntimeCounters
from tgworkers.engine.runtime.deliveries import Deliveries
from tgworkers.engine.runtime.delivery import Delivery
from tgworkers.engine.runtime.settlement import SettleKind, Settlement, dead, settlement
from tgworkers.engine.runtime.settler import Settler
from tgworkers.engine.telemetry.budget import RateBudget
from tgworkers.engine.telemetry.recorder import Telemetry
from tgworkers.engine.wire.envelope import Envelope, HistoryEntry
from tgworkers.engine.wire.keys import PartitionKeys
from tgworkers.engine.wire.script_items import DoneItem

PK = PartitionKeys("tgw", "q", 0)


@dataclass
class Run:
    """What telemetry reads of a delivery (`RunView`), without a delivery's state."""

    pk: PartitionKeys
    entry_id: bytes
    envelope: Envelope | None
    error_type: str | None = None
    deliveries: int = 1


@dataclass
class Settled:
    """What telemetry reads of a settlement (`SettlementView`)."""

    kind: SettleKind
    delivery: Run
    decision: Decision | None = None
    duration_s: float = 0.0


def _env(n: int, name: str = "a.job") -> Envelope:
    return Envelope(id=f"j{n}", name=name, payload=b"{}", enqueued_ms=1, auto_id=n % 2 == 0)


def _done(n: int, name: str = "a.job", *, error: str | None = None) -> Settled:
    run = Run(PK, f"{n}-0".encode(), _env(n, name), error)
    return Settled(SettleKind.DONE, run, DONE, 0.001 * n)


def test_a_done_settlement_carries_the_items_fields() -> None:
    s = settlement(Delivery(PK, b"3-0", {}), _env(3), DONE, lambda ms: ms)
    assert s.kind is SettleKind.DONE
    assert s.decision is DONE
    assert s.item == DoneItem(b"3-0", "j3", dedupe=True, lock=None, token=s.delivery.token)


def test_a_group_is_counted_as_its_jobs_one_by_one() -> None:
    record = HistoryEntry(attempt=1, at_ms=1, kind="error", message="boom")
    failed = Decision(
        disposition=Disposition.DEAD, reason="boom", record=record,
        dead_reason=DeadReason.HANDLER,
    )  # fmt: skip
    done_group = [_done(1), _done(2, "b.job"), _done(3), _done(4, error="ValueError")]
    done_group.append(Settled(SettleKind.DONE, Run(PK, b"9-0", None), DONE, 0.5))
    dead_group = [
        Settled(SettleKind.DEAD, Run(PK, b"5-0", _env(5), "KeyError"), failed, 0.1),
        Settled(
            SettleKind.DEAD,
            Run(PK, b"6-0", None),
            dead(Delivery(PK, b"6-0", {}), "bad", failed=True).decision,
        ),
    ]
    one_by_one, in_bulk = Telemetry(), Telemetry()
    for s in done_group + dead_group:
        one_by_one.observe(s)
    in_bulk.observe_many(SettleKind.DONE, done_group)
    in_bulk.observe_many(SettleKind.DEAD, dead_group)
    assert in_bulk.settled == one_by_one.settled
    assert in_bulk.settled[("q", "a.job", "done", "")] == 3
    assert in_bulk.settled[("q", "a.job", "failed", "ValueError")] == 1
    assert in_bulk.settled[("q", "unknown", "done", "")] == 1


def test_durations_are_sampled_within_the_budget_per_group() -> None:
    t = Telemetry(histogram_samples_per_s=2)
    seen: list[float] = []

    class Histogram:
        def record(self, value: float, _: object) -> None:
            seen.append(value)

    t.i["messaging.process.duration"] = Histogram()
    t.observe_many(SettleKind.DONE, [_done(1), _done(2), _done(3)])
    assert seen == [0.001, 0.002]  # the first two of the group; the third is over budget
    assert t.settled[("q", "a.job", "done", "")] == 3  # counters stay exact


def test_budget_take_answers_a_batch_at_once() -> None:
    budget = RateBudget(5)
    budget._ends = 0.0  # a second long gone: the first call starts a new one
    assert budget.left() == 5
    assert budget.take(3) == 3
    assert budget.take(3) == 2
    assert budget.take(3) == 0
    assert budget.left() == 0
    assert not budget.allow()
    budget._ends -= 1  # as if a second had passed
    assert budget.take(0) == 0
    assert budget.allow()


def test_counters_add_a_group_at_once() -> None:
    counters = RuntimeCounters()
    counters.settled(SettleKind.DONE, 77)
    counters.settled(SettleKind.LATER)
    assert (counters.done, counters.later, counters.dead) == (77, 1, 0)


def test_a_batch_groups_by_partition_and_kind_in_order_and_drops_leave() -> None:
    other = PartitionKeys("tgw", "q", 1)
    a, b = (settlement(Delivery(PK, f"{n}-0".encode(), {}), _env(n), DONE, int) for n in (1, 2))
    c = Settlement(SettleKind.DONE, Delivery(other, b"3-0", {}))
    later = Settlement(SettleKind.LATER, a.delivery)
    lost = Settlement(SettleKind.DROP, Delivery(other, b"8-0", {}))
    batch = [a, c, later, lost, b]
    groups = list(Settler._groups(batch, Deliveries("q"), []))
    assert groups == [[a, b], [c], [later]]  # the drop left: its table forgot it
