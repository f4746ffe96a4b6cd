"""Campaigns, Escrow, Discovery and Price clients against the fakes over loopback."""

from __future__ import annotations

import pytest

from tgworkers.devstack.fake_peers import FakePeers
from tgworkers.peers import Effect, PeerNotDueError, PeerPermanentError, Peers


async def test_proof_verify_creates_a_claim_and_its_receipt_is_recorded_once(
    peers: Peers, fake_peers: FakePeers
) -> None:
    fake_peers.state.add_proof("p_1", campaign_id="cmp_1", user_id="u_1")
    proof = await peers.campaigns.get_proof("p_1")
    assert (proof.kind, proof.status, proof.auto_claim) == ("external", "pending", True)
    verification = await peers.campaigns.verify_proof(
        "p_1", key="campaigns.verify_async:p_1:verify"
    )
    assert (verification.verdict, verification.retry_at_ms) == ("verified", None)
    claim_id = (await peers.campaigns.get_proof("p_1")).claim_id
    assert claim_id is not None
    claim = await peers.campaigns.get_claim(claim_id)
    assert (claim.status, claim.reward.amount, claim.reward.currency) == ("queued", 100, "STARS")
    receipt = await peers.campaigns.record_claim_receipt(
        claim_id,
        reward_id=f"claim:{claim_id}",
        issued_at_ms=123,
        key=f"campaigns.claim:{claim_id}:receipt",
    )
    again = await peers.campaigns.record_claim_receipt(
        claim_id, reward_id=f"claim:{claim_id}", issued_at_ms=123, key="another-key"
    )
    assert (receipt, again) == (Effect.APPLIED, Effect.ALREADY_DONE)
    assert fake_peers.requests("campaigns", f"/internal/v1/claims/{claim_id}/receipt")[0].body == {
        "rewardId": f"claim:{claim_id}",
        "issuedAt": 123,
    }


async def test_pending_verification_carries_retry_at(peers: Peers, fake_peers: FakePeers) -> None:
    fake_peers.state.add_proof(
        "p_2", campaign_id="cmp_1", user_id="u_1",
        verify={"verdict": "pending", "reason": "checking", "retryAt": 999},
    )  # fmt: skip
    verification = await peers.campaigns.verify_proof(
        "p_2", key="campaigns.verify_async:p_2:verify"
    )
    assert (verification.verdict, verification.retry_at_ms) == ("pending", 999)


async def test_channel_join_verdict_through_discovery(peers: Peers, fake_peers: FakePeers) -> None:
    fake_peers.state.add_proof("p_3", campaign_id="cmp_1", user_id="u_7", kind="channel_join",
                               channel_id="ch_1", auto_claim=False)  # fmt: skip
    fake_peers.state.set_member("ch_1", "u_7")
    membership = await peers.discovery.check_member("ch_1", "u_7")
    stranger = await peers.discovery.check_member("ch_1", "u_8")
    assert (membership.member, stranger.member) == (True, False)
    assert membership.checked_at_ms > 0
    recorded = await peers.campaigns.record_verdict(
        "p_3", verdict="verified", reason="member", key="campaigns.verify_async:p_3:verdict"
    )
    assert (recorded.proof_id, recorded.status, recorded.claim_id) == ("p_3", "verified", None)
    assert fake_peers.requests("campaigns")[-1].body == {"verdict": "verified", "reason": "member"}


async def test_unknown_proof_is_permanent(peers: Peers) -> None:
    with pytest.raises(PeerPermanentError, match="proof_not_found"):
        await peers.campaigns.get_proof("p_nope")


async def test_escrow_transition_applied_then_already_done_then_invalid(
    peers: Peers, fake_peers: FakePeers
) -> None:
    fake_peers.state.add_hold("h_9", user_id="u_1", amount=5000)
    fake_peers.state.add_escrow("e_1", buyer_id="u_1", seller_id="u_2", expires_at_ms=1,
                                hold_ids=["h_9"])  # fmt: skip
    escrow = await peers.escrow.get_escrow("e_1")
    assert (escrow.status, escrow.expires_at_ms, escrow.holds[0].amount) == ("open", 1, 5000)
    moved = await peers.escrow.transition_escrow(
        "e_1", to="expired", key="escrow.expire:e_1:transition"
    )
    again = await peers.escrow.transition_escrow("e_1", to="expired", key="other:e_1:transition")
    assert (moved, again) == (Effect.APPLIED, Effect.ALREADY_DONE)
    assert fake_peers.requests("escrow")[-1].body == {"to": "expired", "settlementId": None}
    with pytest.raises(PeerPermanentError) as caught:
        await peers.escrow.transition_escrow(
            "e_1", to="split", key="escrow.adjudicate:e_1:transition"
        )
    assert (caught.value.status, caught.value.code) == (409, "invalid_transition")


async def test_escrow_expiry_before_its_time_is_not_due(
    peers: Peers, fake_peers: FakePeers
) -> None:
    fake_peers.state.add_escrow("e_2", buyer_id="u_1", seller_id="u_2", expires_at_ms=4 * 10**12)
    with pytest.raises(PeerNotDueError) as caught:
        await peers.escrow.transition_escrow(
            "e_2", to="expired", key="escrow.expire:e_2:transition"
        )
    assert caught.value.retry_at_ms == 4 * 10**12


async def test_prices_for_known_symbols(peers: Peers, fake_peers: FakePeers) -> None:
    fake_peers.state.set_price("TON-USD", "5.18", ts_ms=42)
    assert peers.price is not None
    prices = await peers.price.get_prices(["TON-USD", "BTC-USD"])
    assert [(p.symbol, p.price, p.ts_ms) for p in prices] == [("TON-USD", "5.18", 42)]
    assert fake_peers.requests("price")[0].query == {"symbols": "TON-USD,BTC-USD"}
