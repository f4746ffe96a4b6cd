"""payhub.orphan_holds.gc and payhub.ledger.recalc against real Redis and the fake Payhub."""

from __future__ import annotations

from typing import Any

from structlog.testing import capture_logs
from tests.support.platform_jobs import now_ms
from tests.support.wait import wait_until

from tgworkers.jobs.payhub import ledger_recalc

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
    return [(e["released"], e["skipped"], e["failed"])
            for e in logs if e["event"] == "orphan_holds.collected"]  # fmt: skip


async def test_gc_releases_old_uncorrelated_holds_and_keeps_going_past_failures(jobs, fake):
    seed_holds(fake)
    fake.fail("payhub", "release_hold", status=409, body={"code": "hold_not_active"})  # h_1
    fake.fail("payhub", "release_hold", status=503)  # h_2 fails this run
    with capture_logs() as logs:
        async with jobs("payhub.orphan_holds.gc") as h:
            first = await h.enqueue("payhub.orphan_holds.gc", {})
            await wait_until(lambda: counts(logs), what="first run's counts")
            await h.enqueue("payhub.orphan_holds.gc", {})  # the next run retries h_2
            await wait_until(lambda: len(counts(logs)) == 2, what="second run's counts")
    assert first.created
    assert counts(logs) == [(1, 1, 1), (2, 0, 0)]
    (listing, *_) = h.calls("payhub", "/internal/v1/holds")
    assert listing.query["status"] == "active" and listing.query["uncorrelated"] == "true"
    assert now_ms() - HOUR_MS - 10_000 < int(listing.query["createdBefore"]) <= now_ms() - HOUR_MS
    for hold in ("h_1", "h_2", "h_3"):
        assert fake.state.get("holds", hold)["status"] == "released"
        assert set(h.keys("payhub", release_path(hold))) == {f"payhub.orphan_holds.gc:{hold}"}
        assert h.calls("payhub", release_path(hold))[0].body == {"reason": "orphan_ttl"}
    assert fake.state.get("holds", "h_bet")["status"] == "active"
    assert fake.state.get("holds", "h_young")["status"] == "active"


async def test_gc_ttl_from_the_payload_and_from_the_setting(jobs, fake):
    fake.state.add_hold("h_1", user_id="u_1", amount=5, created_at_ms=now_ms() - 10_000)
    with capture_logs() as logs:
        async with jobs("payhub.orphan_holds.gc", ORPHAN_HOLD_TTL_MS="60000") as h:
            await h.enqueue("payhub.orphan_holds.gc", {})
            await wait_until(lambda: counts(logs), what="run with the setting's TTL")
            await h.enqueue("payhub.orphan_holds.gc", {"ttlMs": 5000})
            await wait_until(lambda: len(counts(logs)) == 2, what="run with the payload's TTL")
    assert counts(logs) == [(0, 0, 0), (1, 0, 0)]


async def test_gc_runs_on_its_schedule(jobs, fake):
    fake.state.add_hold("h_1", user_id="u_1", amount=5, created_at_ms=now_ms() - 2 * HOUR_MS)
    async with jobs("payhub.orphan_holds.gc", CRON_RECON_ORPHAN_HOLDS="1"):
        await wait_until(lambda: fake.state.get("holds", "h_1")["status"] == "released",
                         timeout_s=8, what="scheduled release")  # fmt: skip


async def test_ledger_violations_are_logged_at_error_and_counted_by_code(jobs, fake):
    fake.state.set_violations([
        {"code": "negative_balance", "account": "u_1", "detail": "-5 TON"},
        {"code": "negative_balance", "account": "u_2", "detail": "-1 TON"},
        {"code": "orphan_entry", "account": "u_3", "detail": "x"},
    ])  # fmt: skip
    seen: list[str] = []
    ledger_recalc.violation_hooks.append(seen.append)
    before = dict(ledger_recalc.VIOLATIONS)
    try:
        with capture_logs() as logs:
            async with jobs("payhub.ledger.recalc") as h:
                await h.enqueue("payhub.ledger.recalc", {})
                await wait_until(lambda: len(seen) == 3, what="violations counted")
    finally:
        ledger_recalc.violation_hooks.remove(seen.append)
    errors = [e for e in logs if e["event"] == "ledger.violation"]
    assert [(e["log_level"], e["code"], e["account"]) for e in errors] == [
        ("error", "negative_balance", "u_1"), ("error", "negative_balance", "u_2"),
        ("error", "orphan_entry", "u_3"),
    ]  # fmt: skip
    assert ledger_recalc.VIOLATIONS["negative_balance"] - before.get("negative_balance", 0) == 2
    assert sorted(seen) == ["negative_balance", "negative_balance", "orphan_entry"]
    assert len(h.calls("payhub", "/internal/v1/ledger/invariants")) == 1
