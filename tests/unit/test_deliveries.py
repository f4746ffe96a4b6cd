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

import msgspec

from tgworkers.engine import Done, JobContext, JobType, Outcome
from tgworkers.engine.runtime.deliveries import Deliveries, LostBy
from tgworkers.engine.runtime.delivery import Delivery
from tgworkers.engine.wire.keys import PartitionKeys

ENTRY = b"1-0"
KEY = (0, ENTRY)
PACKAGE = Path(__file__).resolve().parents[2] / "tgworkers"
OWNERS = {"tgworkers/engine/runtime/delivery.py", "tgworkers/engine/runtime/deliveries.py"}
FIXTURES = {"tests/unit/test_leases.py"}
"""Tests that build a delivery's past (cancelled, renewed so long ago) directly."""


class Item(msgspec.Struct, frozen=True):
    key: str


async def _handle(ctx: JobContext, p: Item) -> Outcome:
    return Done()


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


def _entry(job_id: str, name: str = "t.plain", **extra: bytes) -> dict[bytes, bytes]:
    fields = {b"id": job_id.encode(), b"name": name.encode(), b"payload": b'{"key":"k"}',
              b"attempt": b"1", b"enqueued_ms": b"1000"}  # fmt: skip
    return fields | {k.encode(): v for k, v in extra.items()}


def test_a_read_batch_is_decoded_held_typed_and_locked_in_one_pass() -> None:
    """`Deliveries.read` leaves each delivery as decode, quarantine and `taken` did."""
    plain = JobType(name="t.plain", payload=Item, handler=_handle)
    exclusive = JobType(name="t.excl", payload=Item, handler=_handle,
                        partition_key=lambda p: p.key, exclusive=True)  # fmt: skip
    pk = PartitionKeys("tgw", "q", 0)
    batch = [
        Delivery(pk, b"1-0", _entry("a"), 1, 5.0),
        Delivery(pk, b"2-0", _entry("b", "t.excl", key=b"k1"), 1, 5.0),
        Delivery(pk, b"3-0", {}, 1, 5.0),  # deleted while pending
        Delivery(pk, b"4-0", _entry("c", moved_deliveries=b"3"), 1, 5.0),  # poison once moved
        Delivery(pk, b"5-0", _entry("d", "t.nope", moved_deliveries=b"1"), 1, 5.0),
    ]
    table = Deliveries("q", {jt.name: jt for jt in (plain, exclusive)})
    run, poison, locking = table.read(batch, max_deliveries=3)
    assert [d.entry_id for d in run] == [b"1-0", b"2-0", b"3-0", b"5-0"]
    assert [d.entry_id for d in poison] == [b"4-0"]
    assert locking
    assert sorted(d.entry_id for d in table.held()) == [d.entry_id for d in batch]
    a, b, gone, c, d = batch
    assert a.job_type is plain and a.lock is None and a.envelope and a.envelope.id == "a"
    assert b.job_type is exclusive and b.lock == pk.lock("k1")
    assert gone.envelope is None and gone.problem == "entry has no fields (deleted while pending)"
    assert c.spent == 4 and d.job_type is None and d.spent == 2
    assert {x.leased_at for x in batch} == {5.0}  # from the read's send time, untouched
    assert table.read(batch[:1], max_deliveries=3)[2] is False
