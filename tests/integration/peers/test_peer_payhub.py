"""Payhub client against the fake Payhub over loopback."""

from __future__ import annotations

import pytest

from tgworkers.devstack.fake_peers import FakePeers
from tgworkers.peers import (
    Effect,
    Payout,
    PeerPermanentError,
    Peers,
    Reference,
    RewardRequest,
    SettlementRequest,
)


def _seed_holds(fake: FakePeers) -> None:
    fake.state.add_hold("h_1", user_id="u_1", amount=1000, created_at_ms=100)
    fake.state.add_hold("h_2", user_id="u_2", amount=1000, created_at_ms=200)


def _settlement(holds: list[str], payout: int) -> SettlementRequest:
    return SettlementRequest(
        settlement_id="game:m_1",
        reference=Reference(kind="game", id="m_1"),
        holds=holds,
        payouts=[Payout(user_id="u_2", amount=payout, currency="TON")],
    )


async def test_orphan_holds_lists_old_uncorrelated_active_holds_across_pages(
    peers: Peers, fake_peers: FakePeers
) -> None:
    for i in range(3):
        fake_peers.state.add_hold(f"h_{i}", user_id="u_1", amount=500, created_at_ms=100 + i)
    fake_peers.state.add_hold(
        "h_bet", user_id="u_1", amount=5, created_at_ms=1, correlation_id="b_1"
    )
    fake_peers.state.add_hold("h_new", user_id="u_1", amount=5, created_at_ms=10_000)
    fake_peers.state.add_hold("h_gone", user_id="u_1", amount=5, created_at_ms=1, status="released")
    holds = [h async for h in peers.payhub.orphan_holds(created_before_ms=1000, limit=2)]
    assert [h.hold_id for h in holds] == ["h_0", "h_1", "h_2"]
    assert (holds[0].amount, holds[0].created_at_ms, holds[0].correlation_id) == (500, 100, None)
    first = fake_peers.requests("payhub", "/internal/v1/holds")[0]
    assert first.query == {"status": "active", "createdBefore": "1000", "uncorrelated": "true",
                           "limit": "2"}  # fmt: skip


async def test_release_hold_then_not_active_is_reported_not_raised(
    peers: Peers, fake_peers: FakePeers
) -> None:
    _seed_holds(fake_peers)
    released = await peers.payhub.release_hold(
        "h_1", reason="orphan_ttl", key="payhub.orphan_holds.gc:h_1"
    )
    again = await peers.payhub.release_hold(
        "h_1", reason="orphan_ttl", key="escrow.expire:e_1:release:h_1"
    )
    assert (released, again) == (Effect.APPLIED, Effect.NOT_ACTIVE)
    assert fake_peers.state.get("holds", "h_1")["status"] == "released"
    assert fake_peers.requests("payhub")[0].body == {"reason": "orphan_ttl"}


async def test_create_settlement_consumes_the_holds(peers: Peers, fake_peers: FakePeers) -> None:
    _seed_holds(fake_peers)
    done = await peers.payhub.create_settlement(_settlement(["h_1", "h_2"], 1900), key="game:m_1")
    assert (done.settlement_id, done.status) == ("game:m_1", "settled")
    assert fake_peers.state.get("settlements", "game:m_1")["fee"] == {"TON": 100}
    [sent] = fake_peers.requests("payhub", "/internal/v1/settlements")
    assert sent.body == {"settlementId": "game:m_1", "reference": {"kind": "game", "id": "m_1"},
                         "holds": ["h_1", "h_2"],
                         "payouts": [{"userId": "u_2", "amount": 1900, "currency": "TON"}]}  # fmt: skip


async def test_unbalanced_settlement_is_permanent(peers: Peers, fake_peers: FakePeers) -> None:
    _seed_holds(fake_peers)
    with pytest.raises(PeerPermanentError) as caught:
        await peers.payhub.create_settlement(_settlement(["h_1"], 1900), key="game:m_1")
    assert (caught.value.status, caught.value.code) == (422, "unbalanced")


async def test_hold_not_active_on_a_settlement_is_permanent_unlike_on_a_release(
    peers: Peers, fake_peers: FakePeers
) -> None:
    _seed_holds(fake_peers)
    await peers.payhub.release_hold("h_2", reason="match_cancelled", key="k:release:h_2")
    with pytest.raises(PeerPermanentError) as caught:
        await peers.payhub.create_settlement(_settlement(["h_1", "h_2"], 1900), key="game:m_1")
    assert (caught.value.status, caught.value.code) == (409, "hold_not_active")
    assert fake_peers.state.get("holds", "h_1")["status"] == "active"


async def test_issue_reward_and_ledger_invariants(peers: Peers, fake_peers: FakePeers) -> None:
    reward = RewardRequest(reward_id="claim:c_1", user_id="u_1", amount=100, currency="STARS",
                           reference=Reference(kind="campaign", id="cmp_1"))  # fmt: skip
    issued = await peers.payhub.issue_reward(reward, key="claim:c_1")
    assert (issued.reward_id, issued.status) == ("claim:c_1", "issued")
    assert fake_peers.state.get("rewards", "claim:c_1")["amount"] == 100
    assert (await peers.payhub.ledger_invariants()).ok is True
    fake_peers.state.set_violations(
        [{"code": "negative_balance", "account": "u_1", "detail": "-5"}]
    )
    checked = await peers.payhub.ledger_invariants()
    assert checked.ok is False
    assert [(v.code, v.account) for v in checked.violations] == [("negative_balance", "u_1")]
