"""games.settlement against real Redis and the fake PlayHub and Payhub."""

from __future__ import annotations

from tests.support.platform_jobs import attempts, audiences
from tests.support.wait import wait_until

SETTLEMENTS = "/internal/v1/settlements"
MATCH = "/internal/v1/games/m_1"
MARK = "/internal/v1/games/m_1/settled"
PAYOUTS = [{"userId": "u_2", "amount": 1900, "currency": "TON"}]


def seed(fake, status="finished"):
    fake.state.add_hold("h_1", user_id="u_1", amount=1000)
    fake.state.add_hold("h_2", user_id="u_2", amount=1000)
    fake.state.add_match("m_1", status=status, hold_ids=["h_1", "h_2"], payouts=PAYOUTS)


async def run(jobs, fake):
    async with jobs("games.settlement") as h:
        result = await h.enqueue("games.settlement", {"matchId": "m_1"})
        await h.wait_done("games.settlement", result.id, {"matchId": "m_1"})
    assert result.id == "games.settlement:m_1"
    return h


async def test_finished_match_is_settled_then_marked(jobs, fake):
    seed(fake)
    h = await run(jobs, fake)
    (settle,) = h.calls("payhub", SETTLEMENTS)
    assert settle.idempotency_key == "game:m_1"
    assert settle.body == {
        "settlementId": "game:m_1",
        "reference": {"kind": "game", "id": "m_1"},
        "holds": ["h_1", "h_2"],
        "payouts": PAYOUTS,
    }
    (mark,) = h.calls("playhub", MARK)
    assert (mark.body, mark.idempotency_key) == (
        {"settlementId": "game:m_1"},
        "games.settlement:m_1:mark",
    )
    assert audiences([settle]) == {"payhub"} and audiences([mark]) == {"playhub"}
    assert fake.state.get("settlements", "game:m_1")["fee"] == {"TON": 100}


async def test_cancelled_match_releases_each_hold_then_is_marked(jobs, fake):
    seed(fake, status="cancelled")
    h = await run(jobs, fake)
    for hold in ("h_1", "h_2"):
        (call,) = h.calls("payhub", f"/internal/v1/holds/{hold}/release")
        assert call.body == {"reason": "match_cancelled"}
        assert call.idempotency_key == f"games.settlement:m_1:release:{hold}"
    (mark,) = h.calls("playhub", MARK)
    assert mark.body == {"settlementId": "game:m_1:cancel"}
    assert mark.idempotency_key == "games.settlement:m_1:mark"
    assert h.calls("payhub", SETTLEMENTS) == []


async def test_settled_match_is_done_without_a_change(jobs, fake):
    seed(fake, status="settled")
    await run(jobs, fake)
    assert [r.method for r in fake.requests()] == ["GET"]


async def test_in_progress_match_retries_with_backoff_spending_attempts(jobs, fake):
    seed(fake, status="in_progress")
    async with jobs("games.settlement") as h:
        await h.enqueue("games.settlement", {"matchId": "m_1"})
        await wait_until(lambda: len(h.calls("playhub", MATCH)) >= 2, what="two reads")
        fake.state.put("matches", "m_1", {**fake.state.get("matches", "m_1"), "status": "finished"})
        await h.wait_done("games.settlement", "games.settlement:m_1", {"matchId": "m_1"})
    reads = attempts(h.calls("playhub", MATCH))
    assert reads == list(range(1, len(reads) + 1)) and len(reads) >= 3
    assert len(h.calls("payhub", SETTLEMENTS)) == 1


async def test_unknown_match_is_dead_lettered_at_once(jobs, fake):
    async with jobs("games.settlement") as h:
        await h.enqueue("games.settlement", {"matchId": "m_404"})
        dead = await h.wait_dead("games.settlement", "games.settlement:m_404")
    assert "404" in dead.reason and dead.attempts == 1


async def test_mark_already_done_counts_as_done_and_transient_settlement_retries_same_key(
    jobs, fake
):
    seed(fake)
    fake.fail("payhub", "create_settlement", status=503, times=1)
    fake.fail("playhub", "mark_match_settled", status=409, body={"code": "already_done"})
    await run(jobs, fake)
    h_keys = [r.idempotency_key for r in fake.requests("payhub", SETTLEMENTS)]
    assert h_keys == ["game:m_1", "game:m_1"]
    assert len(fake.requests("playhub", MARK)) == 1


async def test_unbalanced_settlement_is_dead_lettered_with_422(jobs, fake):
    seed(fake)
    fake.state.put("matches", "m_1", {**fake.state.get("matches", "m_1"),
                                      "payouts": [{"userId": "u_2", "amount": 5000, "currency": "TON"}]})  # fmt: skip
    async with jobs("games.settlement") as h:
        await h.enqueue("games.settlement", {"matchId": "m_1"})
        dead = await h.wait_dead("games.settlement", "games.settlement:m_1")
    assert "422" in dead.reason
    assert h.calls("playhub", MARK) == []
