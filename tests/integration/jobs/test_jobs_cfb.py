"""cfb.settle and its sweep against real Redis and the fake PlayHub."""

from __future__ import annotations

import pytest
from tests.support.platform_jobs import attempts, audiences, now_ms

from tgworkers.errors import InputError

SETTLE = "/internal/v1/cfb/settle"
BETS = "/internal/v1/cfb/bets"


async def test_settle_posts_the_bet_with_its_key_and_is_done(jobs, fake):
    fake.state.add_bet("b_1", t_end_ms=now_ms() - 1000)
    async with jobs("cfb.settle") as h:
        result = await h.enqueue("cfb.settle", {"betId": "b_1"})
        await h.wait_done("cfb.settle", "cfb.settle:b_1", {"betId": "b_1"})
    assert result.id == "cfb.settle:b_1"
    calls = h.calls("playhub", SETTLE)
    assert [c.body for c in calls] == [{"betId": "b_1"}]
    assert h.keys("playhub", SETTLE) == ["cfb.settle:b_1"]
    assert audiences(calls) == {"playhub"}
    assert fake.state.get("bets", "b_1")["status"] == "settled"


async def test_enqueueing_a_bet_twice_is_a_no_op(jobs, fake):
    async with jobs("escrow") as h:  # cfb.settle not running: both jobs stay queued
        first = await h.enqueue("cfb.settle", {"betId": "b_1"}, delay_s=60)
        second = await h.enqueue("cfb.settle", {"betId": "b_1"}, delay_s=60)
    assert (first.created, second.created) == (True, False)


async def test_not_due_runs_again_at_t_end_without_spending_an_attempt(jobs, fake):
    t_end = now_ms() + 700
    fake.state.add_bet("b_2", t_end_ms=t_end)
    async with jobs("cfb.settle") as h:
        await h.enqueue("cfb.settle", {"betId": "b_2"})
        await h.wait_done("cfb.settle", "cfb.settle:b_2", {"betId": "b_2"})
    calls = h.calls("playhub", SETTLE)
    assert len(calls) == 2
    assert attempts(calls) == [1, 1]
    assert calls[1].received_s * 1000 >= t_end
    assert set(h.keys("playhub", SETTLE)) == {"cfb.settle:b_2"}


async def test_unknown_bet_is_dead_lettered_at_once_with_the_peers_status(jobs, fake):
    async with jobs("cfb.settle") as h:
        await h.enqueue("cfb.settle", {"betId": "b_404"})
        dead = await h.wait_dead("cfb.settle", "cfb.settle:b_404")
    assert "404" in dead.reason and "bet_not_found" in dead.errors[-1]["body"]
    assert dead.attempts == 1
    assert len(h.calls("playhub", SETTLE)) == 1


async def test_transient_answers_retry_with_the_same_key(jobs, fake):
    fake.state.add_bet("b_3", t_end_ms=now_ms() - 1000)
    fake.fail("playhub", "settle_cfb_bet", status=503, times=2)
    async with jobs("cfb.settle") as h:
        await h.enqueue("cfb.settle", {"betId": "b_3"})
        await h.wait_done("cfb.settle", "cfb.settle:b_3", {"betId": "b_3"})
    calls = h.calls("playhub", SETTLE)
    assert attempts(calls) == [1, 2, 3]
    assert set(h.keys("playhub", SETTLE)) == {"cfb.settle:b_3"}


async def test_already_settled_bet_counts_as_done(jobs, fake):
    fake.state.add_bet("b_4", t_end_ms=now_ms() - 1000, status="settled")
    async with jobs("cfb.settle") as h:
        await h.enqueue("cfb.settle", {"betId": "b_4"})
        await h.wait_done("cfb.settle", "cfb.settle:b_4", {"betId": "b_4"})
    assert len(h.calls("playhub", SETTLE)) == 1


async def test_bad_payload_is_refused_at_enqueue(jobs):
    async with jobs("cfb.settle") as h:
        with pytest.raises(InputError, match="betId"):
            await h.enqueue("cfb.settle", {})


async def test_sweep_requeues_only_lost_bets(jobs, fake):
    old = now_ms() - 120_000
    fake.state.add_bet("b_lost", t_end_ms=old)
    fake.state.add_bet("b_queued", t_end_ms=old)
    fake.state.add_bet("b_recent", t_end_ms=now_ms() - 1000)  # within the sweep's grace
    fake.state.add_bet("b_done", t_end_ms=old, status="settled")
    async with jobs("cfb.settle") as h:
        queued = await h.enqueue("cfb.settle", {"betId": "b_queued"}, delay_s=60)
        await h.enqueue("cfb.settle.sweep", {})
        await h.wait_done("cfb.settle", "cfb.settle:b_lost", {"betId": "b_lost"})
        state = await h.client.state("cfb.settle", queued.id, {"betId": "b_queued"})
    assert state == "delayed"  # still the one job, still waiting for its own time
    assert h.keys("playhub", SETTLE) == ["cfb.settle:b_lost"]
    (listing,) = h.calls("playhub", BETS)
    assert listing.query["status"] == "open"
    assert now_ms() - 130_000 < int(listing.query["endsBefore"]) <= now_ms() - 60_000
