"""PlayHub client against the fake PlayHub over loopback."""

from __future__ import annotations

import pytest

from tgworkers.devstack.fake_peers import FakePeers
from tgworkers.engine import NotDue, PermanentError
from tgworkers.peers import (
    Effect,
    PeerNotDueError,
    PeerPermanentError,
    Peers,
    PriceBar,
)

FAR_FUTURE_MS = 4_000_000_000_000


async def test_settle_cfb_bet_settles_and_a_replayed_key_gets_the_first_answer(
    peers: Peers, fake_peers: FakePeers
) -> None:
    fake_peers.state.add_bet("b_1", t_end_ms=1)
    first = await peers.playhub.settle_cfb_bet("b_1", key="cfb.settle:b_1")
    again = await peers.playhub.settle_cfb_bet("b_1", key="cfb.settle:b_1")
    other_key = await peers.playhub.settle_cfb_bet("b_1", key="cfb.settle:b_1:other")
    assert (first.status, again.status, other_key.status) == (
        "settled",
        "settled",
        "already_settled",
    )
    assert fake_peers.state.get("bets", "b_1")["status"] == "settled"
    sent = fake_peers.requests("playhub", "/internal/v1/cfb/settle")
    assert [r.body for r in sent] == [{"betId": "b_1"}] * 3
    assert sent[0].path == "/playhub/internal/v1/cfb/settle"  # the base URL's prefix is kept


async def test_settle_before_t_end_is_not_due_at_t_end(peers: Peers, fake_peers: FakePeers) -> None:
    fake_peers.state.add_bet("b_2", t_end_ms=FAR_FUTURE_MS)
    with pytest.raises(PeerNotDueError) as caught:
        await peers.playhub.settle_cfb_bet("b_2", key="cfb.settle:b_2")
    assert isinstance(caught.value, NotDue)
    assert caught.value.retry_at_ms == FAR_FUTURE_MS
    assert (caught.value.status, caught.value.code) == (409, "not_due")


async def test_settle_unknown_bet_is_permanent_with_status_and_body(peers: Peers) -> None:
    with pytest.raises(PeerPermanentError) as caught:
        await peers.playhub.settle_cfb_bet("b_missing", key="cfb.settle:b_missing")
    assert isinstance(caught.value, PermanentError)
    assert caught.value.status == 404
    assert caught.value.code == "bet_not_found"
    assert '"bet_not_found"' in (caught.value.body or "")
    assert caught.value.peer == "playhub"


async def test_open_bets_iterates_every_page_oldest_first(
    peers: Peers, fake_peers: FakePeers
) -> None:
    for i in range(5):
        fake_peers.state.add_bet(f"b_{i}", t_end_ms=1000 - i)
    fake_peers.state.add_bet("b_late", t_end_ms=5000)
    fake_peers.state.add_bet("b_done", t_end_ms=10, status="settled")
    bets = [bet async for bet in peers.playhub.open_bets(ends_before_ms=2000, limit=2)]
    assert [b.bet_id for b in bets] == ["b_4", "b_3", "b_2", "b_1", "b_0"]
    assert bets[0].t_end_ms == 996
    pages = fake_peers.requests("playhub", "/internal/v1/cfb/bets")
    assert [r.query.get("cursor") for r in pages] == [None, "2", "4"]
    assert pages[0].query == {"status": "open", "endsBefore": "2000", "limit": "2"}


async def test_store_price_bars_sends_decimal_strings(peers: Peers, fake_peers: FakePeers) -> None:
    bar = PriceBar(symbol="TON-USD", minute_ms=60_000, open="5.12", high="5.20", low="5.10",
                   close="5.18", samples=3)  # fmt: skip
    stored = await peers.playhub.store_price_bars([bar], key="cfb.price.sample:60000")
    assert stored == 1
    [sent] = fake_peers.requests("playhub", "/internal/v1/cfb/prices")
    assert sent.body == {"bars": [{"symbol": "TON-USD", "minute": 60_000, "open": "5.12",
                                   "high": "5.20", "low": "5.10", "close": "5.18", "samples": 3}]}  # fmt: skip
    assert sent.idempotency_key == "cfb.price.sample:60000"


async def test_get_match_and_mark_settled_then_already_done(
    peers: Peers, fake_peers: FakePeers
) -> None:
    fake_peers.state.add_hold("h_1", user_id="u_1", amount=1000)
    fake_peers.state.add_match("m_1", status="finished", hold_ids=["h_1"],
                               payouts=[{"userId": "u_2", "amount": 1900, "currency": "TON"}])  # fmt: skip
    match = await peers.playhub.get_match("m_1")
    assert match.status == "finished"
    assert [h.hold_id for h in match.holds] == ["h_1"]
    assert match.payouts[0].amount == 1900
    marked = await peers.playhub.mark_match_settled(
        "m_1", settlement_id="game:m_1", key="games.settlement:m_1:mark"
    )
    assert marked is Effect.APPLIED
    later = await peers.playhub.mark_match_settled(
        "m_1", settlement_id="game:m_1", key="games.settlement:m_1:mark:again"
    )
    assert later is Effect.ALREADY_DONE


async def test_get_unknown_match_is_permanent(peers: Peers) -> None:
    with pytest.raises(PeerPermanentError, match="404 match_not_found"):
        await peers.playhub.get_match("m_nope")
