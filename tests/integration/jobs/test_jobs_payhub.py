"""payhub.orphan_holds.gc and payhub.ledger.recalc against the fake Payhub, inline with
`perform` and on the toolkit's worker for the schedule (tgworkers.testing)."""

from __future__ import annotations

from typing import Any

from structlog.testing import capture_logs
from tests.support.platform_jobs import now_ms

from tgworkers.engine import Disposition
from tgworkers.jobs.payhub import ledger_recalc
from tgworkers.testing import assert_peer_called, perform

HOUR_MS = 3_600_000


def release_path(hold_id: str) -> str:
    return f"/internal/v1/holds/{hold_id}/release"


def seed_holds(fake) -> None:
    old = now_ms() - 2 * HOUR_MS
    for i in (1, 2, 3):
        fake.state.add_hold(f"h_{i}", user_id="u_1", amount=500, created_at_ms=old + i)
    fake.state.add_hold("h_bet", user_id="u_1", amount=500, created_at_ms=old, correlation_id="b_1")
    fake.state.add_hold("h_young", user_id="u_1", amount=500)


def counts(logs: list[dict[str, Any]]) -> list[tuple[int, int, int]]:
    return [
        (e["released"], e["skipped"], e["failed"])
        for e in logs
        if e["event"] == "orphan_holds.collected"
    ]


async def test_gc_releases_old_uncorrelated_holds_and_keeps_going_past_failures(tgw_peers):
    seed_holds(tgw_peers)
    tgw_peers.fail("payhub", "release_hold", status=409, body={"code": "hold_not_active"})  # h_1
    tgw_peers.fail("payhub", "release_hold", status=503)  # h_2 fails this run
    with capture_logs() as logs:
        first = await perform("payhub.orphan_holds.gc", {}, peers=tgw_peers)
        second = await perform("payhub.orphan_holds.gc", {}, peers=tgw_peers)  # retries h_2
    assert (first.disposition, second.disposition) == (Disposition.DONE, Disposition.DONE)
    assert counts(logs) == [(1, 1, 1), (2, 0, 0)]
    requests = tgw_peers.requests()
    (listing, *_) = assert_peer_called(requests, "payhub", "GET", "/internal/v1/holds")
    assert listing.query["status"] == "active" and listing.query["uncorrelated"] == "true"
    assert now_ms() - HOUR_MS - 10_000 < int(listing.query["createdBefore"]) <= now_ms() - HOUR_MS
    for hold in ("h_1", "h_2", "h_3"):
        assert tgw_peers.state.get("holds", hold)["status"] == "released"
        calls = assert_peer_called(
            requests,
            "payhub",
            "POST",
            release_path(hold),
            idempotency_key=f"payhub.orphan_holds.gc:{hold}",
        )
        assert calls[0].body == {"reason": "orphan_ttl"}
    assert tgw_peers.state.get("holds", "h_bet")["status"] == "active"
    assert tgw_peers.state.get("holds", "h_young")["status"] == "active"


async def test_gc_ttl_from_the_payload_and_from_the_setting(tgw_peers):
    tgw_peers.state.add_hold("h_1", user_id="u_1", amount=5, created_at_ms=now_ms() - 10_000)
    with capture_logs() as logs:
        await perform(
            "payhub.orphan_holds.gc", {}, peers=tgw_peers, env={"ORPHAN_HOLD_TTL_MS": "60000"}
        )
        await perform(
            "payhub.orphan_holds.gc",
            {"ttlMs": 5000},
            peers=tgw_peers,
            env={"ORPHAN_HOLD_TTL_MS": "60000"},
        )
    assert counts(logs) == [(0, 0, 0), (1, 0, 0)]


async def test_gc_runs_on_its_schedule(tgw_worker, tgw_peers):
    tgw_peers.state.add_hold("h_1", user_id="u_1", amount=5, created_at_ms=now_ms() - 2 * HOUR_MS)
    async with tgw_worker("payhub.orphan_holds.gc") as h:  # */10 * * * *
        await h.advance(600)
        runs = await h.drain("payhub.orphan_holds.gc")
    # a tick in the fake future ran (a real 10-minute boundary may add one of its own)
    ticks = [int(r.id.rsplit(":", 1)[1]) for r in runs if r.outcome == "Done"]
    assert any(tick > now_ms() for tick in ticks), runs
    assert tgw_peers.state.get("holds", "h_1")["status"] == "released"


async def test_ledger_violations_are_logged_at_error_and_counted_by_code(tgw_peers):
    tgw_peers.state.set_violations(
        [
            {"code": "negative_balance", "account": "u_1", "detail": "-5 TON"},
            {"code": "negative_balance", "account": "u_2", "detail": "-1 TON"},
            {"code": "orphan_entry", "account": "u_3", "detail": "x"},
        ]
    )
    seen: list[str] = []
    ledger_recalc.violation_hooks.append(seen.append)
    before = dict(ledger_recalc.VIOLATIONS)
    try:
        with capture_logs() as logs:
            await perform("payhub.ledger.recalc", {}, peers=tgw_peers)
    finally:
        ledger_recalc.violation_hooks.remove(seen.append)
    errors = [e for e in logs if e["event"] == "ledger.violation"]
    assert [(e["log_level"], e["code"], e["account"]) for e in errors] == [
        ("error", "negative_balance", "u_1"),
        ("error", "negative_balance", "u_2"),
        ("error", "orphan_entry", "u_3"),
    ]
    assert ledger_recalc.VIOLATIONS["negative_balance"] - before.get("negative_balance", 0) == 2
    assert sorted(seen) == ["negative_balance", "negative_balance", "orphan_entry"]
    assert_peer_called(
        tgw_peers.requests(), "payhub", "GET", "/internal/v1/ledger/invariants", times=1
    )
