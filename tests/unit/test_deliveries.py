"""The delivery table owns delivery state: its verdicts, and nobody else's edits.

A lease verdict is about the delivery it was asked for, never a newer one of the entry.
Seen in the chaos suite (Redis paused past the visibility timeout): a renewal sent
during the pause carried the old delivery's token; our own sweep's reclaim ran first
when Redis woke, so the renewal answered "lost"; by the time that reply arrived the
reclaimed, newer delivery was running here under the same entry id, and losing *it*
stopped renewing its key's lock while it ran: another job of the key started beside it.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tgworkers.engine.runtime.deliveries import Deliveries, LostBy
from tgworkers.engine.runtime.delivery import Delivery
from tgworkers.engine.wire.keys import PartitionKeys

ENTRY = b"1-0"
KEY = (0, ENTRY)
PACKAGE = Path(__file__).resolve().parents[2] / "tgworkers"
OWNERS = {"tgworkers/engine/runtime/delivery.py", "tgworkers/engine/runtime/deliveries.py"}
FIXTURES = {"tests/unit/test_leases.py"}
"""Tests that build a delivery's past (cancelled, renewed so long ago) directly."""


def _table(held: Delivery) -> Deliveries:
    table = Deliveries("q")
    table.taken([held])
    return table


def _delivery(deliveries: int) -> Delivery:
    return Delivery(PartitionKeys("tgw", "q", 0), ENTRY, {}, deliveries=deliveries)


def test_a_verdict_about_an_older_delivery_leaves_the_newer_one_running() -> None:
    old, new = _delivery(1), _delivery(2)
    table = _table(new)
    table.lose(KEY, delivery=old)
    assert table.held() == [new]
    assert not new.lost


def test_a_verdict_about_the_held_delivery_loses_it() -> None:
    held = _delivery(2)
    table = _table(held)
    table.lose(KEY, delivery=held)
    assert table.held() == []
    assert held.lost
    assert table.counters.lease_lost == 1


def test_the_watchdog_loses_whatever_it_holds() -> None:
    held = _delivery(1)
    table = _table(held)
    table.lose(KEY, by=LostBy.EXPIRED)
    assert held.lost
    assert table.counters.lease_expired == 1


def test_a_delivery_being_settled_is_left_to_its_settle_script_unless_deleted() -> None:
    held = _delivery(1)
    table = _table(held)
    table.settling(held)
    table.expire(lambda d: True)
    assert table.held() == [held]
    table.lose(KEY, by=LostBy.DELETED)
    assert held.lost
    assert table.counters.lost == 1


def test_a_superseded_delivery_is_forgotten_never_its_successor() -> None:
    old, new = _delivery(1), _delivery(2)
    table = _table(old)
    table.superseded(old, new)
    table.taken([new])
    table.settled([old])  # the older run's settle comes late: the newer one stays held
    assert table.held() == [new]
    assert old.lost
    assert table.counters.superseded == 1


def test_a_new_run_of_an_entry_waits_for_its_unfinished_run_then_is_handed_out() -> None:
    lost, new = _delivery(1), _delivery(2)
    table = _table(lost)
    assert table.begins(lost) is None
    table.lose(KEY)  # cancelled, but its coroutine has not returned
    table.superseded(lost, new)
    table.taken([new])
    assert table.begins(new) is lost  # parked behind it
    assert table.counters.waited_unfinished == 1
    assert table.ended(lost) == [new]
    assert table.begins(new) is None


def _assigned_attributes(tree: ast.AST) -> set[tuple[int, str]]:
    """(line, attribute) of every `x.attr = …`, `x.attr += …` and `with … as x.attr`."""
    targets: list[ast.expr] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            targets += node.targets
        elif isinstance(node, ast.AugAssign | ast.AnnAssign):
            targets.append(node.target)
        elif isinstance(node, ast.withitem) and node.optional_vars is not None:
            targets.append(node.optional_vars)
        elif isinstance(node, ast.For | ast.AsyncFor):
            targets.append(node.target)
    found: set[tuple[int, str]] = set()
    for target in targets:
        for sub in ast.walk(target):
            if isinstance(sub, ast.Attribute) and isinstance(sub.ctx, ast.Store):
                # `self.x = …` is a class setting its own field, not a delivery's, and
                # `counters.lost` is a `RuntimeCounters` field of the same name
                owner = sub.value
                name = owner.id if isinstance(owner, ast.Name) else getattr(owner, "attr", "")
                if name not in ("self", "counters"):
                    found.add((sub.lineno, sub.attr))
    return found


def test_only_the_delivery_table_changes_a_deliverys_state() -> None:
    """Every module but delivery.py and deliveries.py asks the table (`Deliveries`)."""
    # `deliveries` (the entry's count) is set once, in the constructor; the name is also
    # the runtime's and the executor's table attribute
    fields = set(Delivery.__slots__) - {"deliveries"}
    roots = [PACKAGE, PACKAGE.parent / "tests", PACKAGE.parent / "bench"]
    edits = sorted(
        f"{path.relative_to(PACKAGE.parent)}:{line} sets .{attr}"
        for root in roots
        for path in root.rglob("*.py")
        if str(path.relative_to(PACKAGE.parent)) not in OWNERS | FIXTURES
        for line, attr in _assigned_attributes(ast.parse(path.read_text()))
        if attr in fields
    )
    assert not edits, "delivery state edited outside its owner:\n" + "\n".join(edits)


def test_the_check_sees_an_edit_from_outside() -> None:
    code = "d.lost = True\nd.leased_at += 1\nasync def f():\n    async with t() as d.timeout: ...\n"
    assert {attr for _, attr in _assigned_attributes(ast.parse(code))} == {
        "lost",
        "leased_at",
        "timeout",
    }
