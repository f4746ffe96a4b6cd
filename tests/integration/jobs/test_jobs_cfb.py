"""cfb.settle and its sweep against the fake PlayHub: inline with `perform`, end to end with
the toolkit's worker (tgworkers.testing, docs/testing.md)."""

from __future__ import annotations

import pytest
from tests.support.platform_jobs import attempts, audiences, now_ms

from tgworkers.engine import Disposition
from tgworkers.errors import InputError
from tgworkers.testing import assert_peer_called, perform

SETTLE = "/internal/v1/cfb/settle"
BETS = "/internal/v1/cfb/bets"
BET = {"betId": "b_1"}


async def test_settle_posts_the_bet_with_its_key_and_is_done(tgw_worker, tgw_peers):
    tgw_peers.state.add_bet("b_1", t_end_ms=now_ms() - 1000)
    async with tgw_worker("cfb.settle") as h:
        result = await h.enqueue("cfb.settle", BET)
        assert [r.outcome for r in await h.drain("cfb.settle")] == ["Done"]
        assert await h.client.state("cfb.settle", result.id, BET) == "done"
    assert result.id == "cfb.settle:b_1"
    calls = h.assert_peer_called(
        "playhub", "POST", SETTLE, idempotency_key="cfb.settle:b_1", times=1
    )
    assert calls[0].body == BET
    assert audiences(calls) == {"playhub"}
    assert tgw_peers.state.get("bets", "b_1")["status"] == "settled"


async def test_enqueueing_a_bet_twice_is_a_no_op(tgw_worker):
    async with tgw_worker("escrow") as h:  # cfb.settle not running: both jobs stay queued
        first = await h.enqueue("cfb.settle", BET, delay_s=60)
        second = await h.enqueue("cfb.settle", BET, delay_s=60)
        assert len(await h.queued("cfb.settle")) == 1
    assert (first.created, second.created) == (True, False)


async def test_not_due_runs_again_at_t_end_without_spending_an_attempt(tgw_worker, tgw_peers):
    t_end = now_ms() + 60_000  # a minute: the toolkit advances time, nobody waits
    tgw_peers.state.add_bet("b_2", t_end_ms=t_end)
    async with tgw_worker("cfb.settle") as h:
        await h.enqueue("cfb.settle", {"betId": "b_2"})
        await h.drain("cfb.settle")
        await h.assert_enqueued("cfb.settle", payload={"betId": "b_2"}, at=t_end, within_ms=50)
        runs = await h.drain("cfb.settle", with_delayed=True)  # advances to t_end
    calls = assert_peer_called(tgw_peers.requests(), "playhub", "POST", SETTLE, times=2)
    assert attempts(calls) == [1, 1]
    assert [(r.attempt, r.outcome) for r in runs if r.name == "cfb.settle"] == [(1, "Done")]
    assert {c.idempotency_key for c in calls} == {"cfb.settle:b_2"}


async def test_unknown_bet_is_dead_lettered_at_once_with_the_peers_status(tgw_worker):
    async with tgw_worker("cfb.settle") as h:
        await h.enqueue("cfb.settle", {"betId": "b_404"})
        await h.drain("cfb.settle")
        dead = await h.assert_dead_lettered("cfb.settle", "cfb.settle:b_404", reason="404")
    assert "bet_not_found" in dead.errors[-1]["body"]
    assert dead.attempts == 1
    h.assert_peer_called("playhub", "POST", SETTLE, times=1)


async def test_transient_answers_retry_with_the_same_key(tgw_worker, tgw_peers):
    tgw_peers.state.add_bet("b_3", t_end_ms=now_ms() - 1000)
    tgw_peers.fail("playhub", "settle_cfb_bet", status=503, times=2)
    async with tgw_worker("cfb.settle") as h:
        await h.enqueue("cfb.settle", {"betId": "b_3"})
        runs = await h.drain("cfb.settle", with_delayed=True)
    assert [r.outcome for r in runs if r.name == "cfb.settle"] == ["raised", "raised", "Done"]
    calls = h.assert_peer_called("playhub", "POST", SETTLE, idempotency_key="cfb.settle:b_3")
    assert attempts(calls) == [1, 2, 3]


async def test_already_settled_bet_counts_as_done(tgw_peers):
    tgw_peers.state.add_bet("b_4", t_end_ms=now_ms() - 1000, status="settled")
    result = await perform("cfb.settle", {"betId": "b_4"}, peers=tgw_peers)
    assert result.disposition is Disposition.DONE
    assert_peer_called(tgw_peers.requests(), "playhub", "POST", SETTLE, times=1)


async def test_bad_payload_is_refused_at_enqueue(tgw_worker):
    async with tgw_worker("cfb.settle") as h:
        with pytest.raises(InputError, match="betId"):
            await h.enqueue("cfb.settle", {})


async def test_sweep_requeues_only_lost_bets(tgw_worker, tgw_peers):
    old = now_ms() - 120_000
    tgw_peers.state.add_bet("b_lost", t_end_ms=old)
    tgw_peers.state.add_bet("b_queued", t_end_ms=old)
    tgw_peers.state.add_bet("b_recent", t_end_ms=now_ms() - 1000)  # within the sweep's grace
    tgw_peers.state.add_bet("b_done", t_end_ms=old, status="settled")
    async with tgw_worker("cfb.settle") as h:
        queued = await h.enqueue("cfb.settle", {"betId": "b_queued"}, delay_s=60)
        await h.enqueue("cfb.settle.sweep", {})
        runs = await h.drain("cfb.settle")
        state = await h.client.state("cfb.settle", queued.id, {"betId": "b_queued"})
    assert state == "delayed"  # still the one job, still waiting for its own time
    assert sorted(r.id for r in runs if r.name == "cfb.settle") == ["cfb.settle:b_lost"]
    h.assert_peer_called("playhub", "POST", SETTLE, idempotency_key="cfb.settle:b_lost", times=1)
    (listing,) = h.assert_peer_called("playhub", "GET", BETS)
    assert listing.query["status"] == "open"
    assert now_ms() - 130_000 < int(listing.query["endsBefore"]) <= now_ms() - 60_000
