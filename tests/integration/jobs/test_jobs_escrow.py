"""escrow.expire and escrow.adjudicate against the fake Escrow and Payhub: one run inline
with `perform`, retries and the wire end to end on the toolkit's worker (tgworkers.testing)."""

from __future__ import annotations

import pytest
from tests.support.platform_jobs import attempts, audiences, now_ms

from tgworkers.engine import Disposition
from tgworkers.errors import InputError
from tgworkers.testing import perform

PAST = 1_000
HOUR_MS = 3_600_000


def escrow_path(escrow_id: str, tail: str = "") -> str:
    return f"/internal/v1/escrows/{escrow_id}{tail}"


def release_path(hold_id: str) -> str:
    return f"/internal/v1/holds/{hold_id}/release"


def seed(fake, escrow_id="e_1", *, status="open", expires_at_ms=None, amounts=(5000, 2500)):
    holds = []
    for i, amount in enumerate(amounts, 1):
        hold_id = f"{escrow_id}_h{i}"
        fake.state.add_hold(hold_id, user_id="buyer", amount=amount, currency="TON")
        holds.append(hold_id)
    expires = now_ms() - PAST if expires_at_ms is None else expires_at_ms
    fake.state.add_escrow(escrow_id, buyer_id="buyer", seller_id="seller",
                          expires_at_ms=expires, status=status, hold_ids=holds)  # fmt: skip
    return holds


def calls(peers, peer: str, path: str, method: str | None = None):
    return [r for r in peers.requests(peer, path) if method in (None, r.method)]


async def test_expire_releases_each_hold_then_moves_to_expired(tgw_peers):
    h1, h2 = seed(tgw_peers)
    result = await perform("escrow.expire", {"escrowId": "e_1"}, peers=tgw_peers)
    assert (result.disposition, result.job_id) == (Disposition.DONE, "escrow.expire:e_1")
    for hold in (h1, h2):
        (call,) = calls(tgw_peers, "payhub", release_path(hold))
        assert call.body == {"reason": "escrow_expired"}
        assert call.idempotency_key == f"escrow.expire:e_1:release:{hold}"
    (move,) = calls(tgw_peers, "escrow", escrow_path("e_1", "/transition"))
    assert move.body == {"to": "expired", "settlementId": None}
    assert move.idempotency_key == "escrow.expire:e_1:transition"
    assert audiences(calls(tgw_peers, "payhub", release_path(h1))) == {"payhub"}
    assert audiences([move]) == {"escrow"}
    assert tgw_peers.state.get("escrows", "e_1")["status"] == "expired"


async def test_advance_moves_the_handlers_clock_so_an_escrow_expires_at_its_time(
    tgw_worker, tgw_peers, tgw_clock
):
    async with tgw_worker("escrow") as h:
        await h.advance(60)  # the test's clock now runs ahead of Redis's
        expires_at = tgw_clock.now_ms() + HOUR_MS
        seed(tgw_peers, expires_at_ms=expires_at)
        await h.enqueue("escrow.expire", {"escrowId": "e_1"})  # due now, expires in an hour
        early = await h.drain("escrow")
        await h.advance(HOUR_MS / 1000 - 100)  # past the snooze's cap (WAIT_MAX_MS, 5 min)
        not_yet = await h.drain("escrow")
        await h.assert_enqueued("escrow.expire", at=expires_at, within_ms=1000)
        await h.advance(100)
        due = await h.drain("escrow")
    assert [(r.outcome, r.attempt) for r in early + not_yet] == [("Snooze", 1), ("Snooze", 1)]
    assert [(r.outcome, r.attempt) for r in due] == [("Done", 1)]  # no attempt spent
    assert tgw_peers.state.get("escrows", "e_1")["status"] == "expired"


@pytest.mark.parametrize("status", ["disputed", "expired", "released", "refunded", "split"])
async def test_expire_on_a_disputed_or_final_escrow_changes_nothing(tgw_peers, status):
    seed(tgw_peers, status=status)
    result = await perform("escrow.expire", {"escrowId": "e_1"}, peers=tgw_peers)
    assert result.disposition is Disposition.DONE
    assert [r.method for r in tgw_peers.requests()] == ["GET"]
    assert tgw_peers.state.get("escrows", "e_1")["status"] == status


async def test_unknown_escrow_is_dead_lettered_with_the_peers_status(tgw_peers):
    result = await perform("escrow.expire", {"escrowId": "e_404"}, peers=tgw_peers)
    assert result.disposition is Disposition.DEAD
    assert "404" in str(result.reason)  # dead at attempt 1: no retry


async def test_a_released_hold_is_skipped_and_transient_answers_retry_with_the_same_keys(
    tgw_worker, tgw_peers
):
    h1, h2 = seed(tgw_peers)
    # h1 released elsewhere: 409 hold_not_active is success
    tgw_peers.state.put("holds", h1, {**tgw_peers.state.get("holds", h1), "status": "released"})
    tgw_peers.fail("escrow", "transition_escrow", status=502, times=2)
    async with tgw_worker("escrow") as h:
        await h.enqueue("escrow.expire", {"escrowId": "e_1"})
        runs = await h.drain("escrow", with_delayed=True)
    assert [r.outcome for r in runs] == ["raised", "raised", "Done"]
    moves = calls(tgw_peers, "escrow", escrow_path("e_1", "/transition"))
    assert attempts(moves) == [1, 2, 3]
    assert {m.idempotency_key for m in moves} == {"escrow.expire:e_1:transition"}
    # the releases finished in attempt 1 are not sent again (the step record)
    releases = [calls(tgw_peers, "payhub", release_path(hold)) for hold in (h1, h2)]
    assert [len(r) for r in releases] == [1, 1]


async def test_release_settles_every_hold_to_the_seller(tgw_peers):
    h1, h2 = seed(tgw_peers, status="disputed")
    payload = {"escrowId": "e_1", "decision": "release", "moderatorId": "mod_1"}
    assert (
        await perform("escrow.adjudicate", payload, peers=tgw_peers)
    ).disposition is Disposition.DONE
    (settle,) = calls(tgw_peers, "payhub", "/internal/v1/settlements")
    assert settle.idempotency_key == "escrow:e_1"
    assert settle.body == {
        "settlementId": "escrow:e_1",
        "reference": {"kind": "escrow", "id": "e_1"},
        "holds": [h1, h2],
        "payouts": [{"userId": "seller", "amount": 7500, "currency": "TON"}],
    }
    (move,) = calls(tgw_peers, "escrow", escrow_path("e_1", "/transition"))
    assert move.body == {"to": "released", "settlementId": "escrow:e_1"}
    assert move.idempotency_key == "escrow.adjudicate:e_1:transition"


async def test_split_pays_floor_share_to_the_seller_and_the_rest_to_the_buyer(tgw_peers):
    seed(tgw_peers, status="disputed", amounts=(3333, 4))  # 3337 held
    payload = {"escrowId": "e_1", "decision": "split", "splitBps": 3333, "moderatorId": "m"}
    assert (
        await perform("escrow.adjudicate", payload, peers=tgw_peers)
    ).disposition is Disposition.DONE
    (settle,) = calls(tgw_peers, "payhub", "/internal/v1/settlements")
    assert settle.body["payouts"] == [
        {"userId": "seller", "amount": 1112, "currency": "TON"},  # floor(3337 * 0.3333)
        {"userId": "buyer", "amount": 2225, "currency": "TON"},
    ]
    assert tgw_peers.state.get("settlements", "escrow:e_1")["fee"] == {"TON": 0}
    (move,) = calls(tgw_peers, "escrow", escrow_path("e_1", "/transition"))
    assert move.body == {"to": "split", "settlementId": "escrow:e_1"}


async def test_refund_releases_every_hold_to_the_buyer(tgw_peers):
    h1, h2 = seed(tgw_peers, status="disputed")
    payload = {"escrowId": "e_1", "decision": "refund", "moderatorId": "m"}
    assert (
        await perform("escrow.adjudicate", payload, peers=tgw_peers)
    ).disposition is Disposition.DONE
    for hold in (h1, h2):
        (call,) = calls(tgw_peers, "payhub", release_path(hold))
        assert call.body == {"reason": "escrow_refund"}
        assert call.idempotency_key == f"escrow.adjudicate:e_1:release:{hold}"
    (move,) = calls(tgw_peers, "escrow", escrow_path("e_1", "/transition"))
    assert move.body == {"to": "refunded", "settlementId": None}
    assert calls(tgw_peers, "payhub", "/internal/v1/settlements") == []


async def test_a_decision_on_a_final_escrow_is_done_without_a_change(tgw_peers):
    seed(tgw_peers, status="refunded")
    payload = {"escrowId": "e_1", "decision": "release", "moderatorId": "m"}
    assert (
        await perform("escrow.adjudicate", payload, peers=tgw_peers)
    ).disposition is Disposition.DONE
    assert [r.method for r in tgw_peers.requests()] == ["GET"]


@pytest.mark.parametrize(
    "extra",
    [{"decision": "split"}, {"decision": "split", "splitBps": 10001},
     {"decision": "split", "splitBps": -1}, {"decision": "refund", "splitBps": 5000}],
)  # fmt: skip
async def test_bad_split_bps_is_refused_at_enqueue_naming_it(tgw_worker, extra):
    async with tgw_worker("escrow") as h:
        with pytest.raises(InputError, match="splitBps"):
            await h.enqueue("escrow.adjudicate", {"escrowId": "e_1", "moderatorId": "m", **extra})


async def test_bad_split_bps_on_the_wire_is_dead_lettered_before_any_call(tgw_worker, tgw_peers):
    seed(tgw_peers, status="disputed")
    raw = '{"escrowId": "e_1", "decision": "split", "splitBps": 20000, "moderatorId": "m"}'
    async with tgw_worker("escrow") as h:
        proc = h.worker.registry.processors["escrow"]
        ready = h.worker.layout.partition_for(proc, "e_1").ready
        await h.redis.xadd(ready, {"id": "wire-1", "name": "escrow.adjudicate", "payload": raw})
        await h.drain("escrow")
        dead = await h.assert_dead_lettered("escrow.adjudicate", "wire-1", reason="splitBps")
    assert dead.attempts >= 1
    assert tgw_peers.requests() == []
    assert tgw_peers.state.get("escrows", "e_1")["status"] == "disputed"


async def test_unbalanced_or_invalid_answers_dead_letter_with_the_status(tgw_peers):
    seed(tgw_peers, status="open")  # the fake refuses open -> split: 409 invalid_transition
    payload = {"escrowId": "e_1", "decision": "split", "splitBps": 5000, "moderatorId": "m"}
    result = await perform("escrow.adjudicate", payload, peers=tgw_peers)
    assert result.disposition is Disposition.DEAD
    assert "409" in str(result.reason)
    assert "invalid_transition" in str(result.decision.record.body)
