"""games.settlement against the fake PlayHub and Payhub: single runs inline with `perform`,
retries on the toolkit's worker (tgworkers.testing, docs/testing.md)."""

from __future__ import annotations

from tests.support.platform_jobs import attempts, audiences

from tgworkers.engine import Disposition
from tgworkers.testing import Performed, assert_peer_called, perform

SETTLEMENTS = "/internal/v1/settlements"
MATCH = "/internal/v1/games/m_1"
MARK = "/internal/v1/games/m_1/settled"
PAYOUTS = [{"userId": "u_2", "amount": 1900, "currency": "TON"}]
MATCH_1 = {"matchId": "m_1"}


def seed(fake, status="finished"):
    fake.state.add_hold("h_1", user_id="u_1", amount=1000)
    fake.state.add_hold("h_2", user_id="u_2", amount=1000)
    fake.state.add_match("m_1", status=status, hold_ids=["h_1", "h_2"], payouts=PAYOUTS)


async def run(peers) -> Performed:
    result = await perform("games.settlement", MATCH_1, peers=peers)
    assert (result.disposition, result.job_id) == (Disposition.DONE, "games.settlement:m_1")
    return result


async def test_finished_match_is_settled_then_marked(tgw_peers):
    seed(tgw_peers)
    await run(tgw_peers)
    (settle,) = assert_peer_called(tgw_peers.requests(), "payhub", "POST", SETTLEMENTS)
    assert settle.idempotency_key == "game:m_1"
    assert settle.body == {
        "settlementId": "game:m_1",
        "reference": {"kind": "game", "id": "m_1"},
        "holds": ["h_1", "h_2"],
        "payouts": PAYOUTS,
    }
    (mark,) = assert_peer_called(tgw_peers.requests(), "playhub", "POST", MARK)
    assert (mark.body, mark.idempotency_key) == (
        {"settlementId": "game:m_1"},
        "games.settlement:m_1:mark",
    )
    assert audiences([settle]) == {"payhub"} and audiences([mark]) == {"playhub"}
    assert tgw_peers.state.get("settlements", "game:m_1")["fee"] == {"TON": 100}


async def test_cancelled_match_releases_each_hold_then_is_marked(tgw_peers):
    seed(tgw_peers, status="cancelled")
    await run(tgw_peers)
    for hold in ("h_1", "h_2"):
        (call,) = tgw_peers.requests("payhub", f"/internal/v1/holds/{hold}/release")
        assert call.body == {"reason": "match_cancelled"}
        assert call.idempotency_key == f"games.settlement:m_1:release:{hold}"
    (mark,) = tgw_peers.requests("playhub", MARK)
    assert mark.body == {"settlementId": "game:m_1:cancel"}
    assert mark.idempotency_key == "games.settlement:m_1:mark"
    assert tgw_peers.requests("payhub", SETTLEMENTS) == []


async def test_settled_match_is_done_without_a_change(tgw_peers):
    seed(tgw_peers, status="settled")
    await run(tgw_peers)
    assert [r.method for r in tgw_peers.requests()] == ["GET"]


async def test_in_progress_match_retries_with_backoff_spending_attempts(tgw_worker, tgw_peers):
    seed(tgw_peers, status="in_progress")
    async with tgw_worker("games.settlement") as h:
        await h.enqueue("games.settlement", MATCH_1)
        for _ in range(2):  # two attempts, each retried after its backoff
            await h.drain("games.settlement")
            await h.advance(1)
        match = tgw_peers.state.get("matches", "m_1")
        tgw_peers.state.put("matches", "m_1", {**match, "status": "finished"})
        runs = await h.drain("games.settlement", with_delayed=True)
    reads = attempts(tgw_peers.requests("playhub", MATCH))
    assert reads == list(range(1, len(reads) + 1)) and len(reads) >= 3
    assert runs[-1].outcome == "Done"
    assert len(tgw_peers.requests("payhub", SETTLEMENTS)) == 1


async def test_unknown_match_is_dead_lettered_at_once(tgw_peers):
    result = await perform("games.settlement", {"matchId": "m_404"}, peers=tgw_peers)
    assert result.disposition is Disposition.DEAD and "404" in str(result.reason)


async def test_mark_already_done_counts_as_done_and_transient_settlement_retries_same_key(
    tgw_worker, tgw_peers
):
    seed(tgw_peers)
    tgw_peers.fail("payhub", "create_settlement", status=503, times=1)
    tgw_peers.fail("playhub", "mark_match_settled", status=409, body={"code": "already_done"})
    async with tgw_worker("games.settlement") as h:
        await h.enqueue("games.settlement", MATCH_1)
        runs = await h.drain("games.settlement", with_delayed=True)
    assert [r.outcome for r in runs] == ["raised", "Done"]
    keys = [r.idempotency_key for r in tgw_peers.requests("payhub", SETTLEMENTS)]
    assert keys == ["game:m_1", "game:m_1"]
    assert len(tgw_peers.requests("playhub", MARK)) == 1


async def test_unbalanced_settlement_is_dead_lettered_with_422(tgw_peers):
    seed(tgw_peers)
    unbalanced = [{"userId": "u_2", "amount": 5000, "currency": "TON"}]
    tgw_peers.state.put(
        "matches", "m_1", {**tgw_peers.state.get("matches", "m_1"), "payouts": unbalanced}
    )
    result = await perform("games.settlement", MATCH_1, peers=tgw_peers)
    assert result.disposition is Disposition.DEAD and "422" in str(result.reason)
    assert tgw_peers.requests("playhub", MARK) == []
