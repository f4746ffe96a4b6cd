"""Every call carries the service JWT, and every mutation its Idempotency-Key."""

from __future__ import annotations

import logging
from io import StringIO

import pytest
import structlog
from tests.support.fake_peers import peers_config

from tgworkers.devstack.fake_peers import FakePeers
from tgworkers.logs import configure_logging
from tgworkers.peers import (
    Payout,
    PeerAuthError,
    PeerPermanentError,
    Peers,
    PriceBar,
    Reference,
    RewardRequest,
    ServiceKey,
    SettlementRequest,
    open_peers,
)

BAR = PriceBar(symbol="TON-USD", minute_ms=0, open="1", high="1", low="1", close="1", samples=1)


def _seed(fake: FakePeers) -> None:
    state = fake.state
    state.add_bet("b_1", t_end_ms=1)
    state.add_hold("h_1", user_id="u_1", amount=10)
    state.add_hold("h_2", user_id="u_1", amount=10)
    state.add_match("m_1", status="finished", hold_ids=["h_2"])
    state.add_proof("p_1", campaign_id="cmp", user_id="u_1")
    state.add_proof("p_2", campaign_id="cmp", user_id="u_1", kind="channel_join", channel_id="ch")
    state.add_claim("c_1", campaign_id="cmp", user_id="u_1", amount=5)
    state.add_escrow("e_1", buyer_id="u_1", seller_id="u_2", expires_at_ms=1)


async def _call_every_method(peers: Peers) -> dict[str, str]:
    """Each method once; returns the Idempotency-Key passed to each mutation, by path."""
    settlement = SettlementRequest(settlement_id="game:m_1", reference=Reference(kind="game", id="m_1"),
                                   holds=["h_2"], payouts=[Payout(user_id="u_1", amount=5, currency="TON")])  # fmt: skip
    reward = RewardRequest(reward_id="claim:c_1", user_id="u_1", amount=5, currency="STARS",
                           reference=Reference(kind="campaign", id="cmp"))  # fmt: skip
    await peers.playhub.settle_cfb_bet("b_1", key="cfb.settle:b_1")
    _ = [b async for b in peers.playhub.open_bets(ends_before_ms=10)]
    await peers.playhub.store_price_bars([BAR], key="cfb.price.sample:0")
    await peers.playhub.get_match("m_1")
    await peers.payhub.create_settlement(settlement, key="game:m_1")
    await peers.playhub.mark_match_settled(
        "m_1", settlement_id="game:m_1", key="games.settlement:m_1:mark"
    )
    _ = [h async for h in peers.payhub.orphan_holds(created_before_ms=10**15)]
    await peers.payhub.release_hold("h_1", reason="orphan_ttl", key="payhub.orphan_holds.gc:h_1")
    await peers.payhub.issue_reward(reward, key="claim:c_1")
    await peers.payhub.ledger_invariants()
    await peers.campaigns.get_proof("p_1")
    await peers.campaigns.verify_proof("p_1", key="campaigns.verify_async:p_1:verify")
    await peers.campaigns.record_verdict(
        "p_2", verdict="rejected", reason="no", key="campaigns.verify_async:p_2:verdict"
    )
    await peers.campaigns.get_claim("c_1")
    await peers.campaigns.record_claim_receipt(
        "c_1", reward_id="claim:c_1", issued_at_ms=1, key="campaigns.claim:c_1:receipt"
    )
    await peers.escrow.get_escrow("e_1")
    await peers.escrow.transition_escrow("e_1", to="expired", key="escrow.expire:e_1:transition")
    await peers.discovery.check_member("ch", "u_1")
    assert peers.price is not None
    await peers.price.get_prices(["TON-USD"])
    return {
        "/internal/v1/cfb/settle": "cfb.settle:b_1",
        "/internal/v1/cfb/prices": "cfb.price.sample:0",
        "/internal/v1/settlements": "game:m_1",
        "/internal/v1/games/m_1/settled": "games.settlement:m_1:mark",
        "/internal/v1/holds/h_1/release": "payhub.orphan_holds.gc:h_1",
        "/internal/v1/rewards": "claim:c_1",
        "/internal/v1/proofs/p_1/verify": "campaigns.verify_async:p_1:verify",
        "/internal/v1/proofs/p_2/verdict": "campaigns.verify_async:p_2:verdict",
        "/internal/v1/claims/c_1/receipt": "campaigns.claim:c_1:receipt",
        "/internal/v1/escrows/e_1/transition": "escrow.expire:e_1:transition",
    }


async def test_every_call_is_signed_and_every_post_carries_its_key(
    peers: Peers, fake_peers: FakePeers
) -> None:
    _seed(fake_peers)
    keys = await _call_every_method(peers)
    seen = fake_peers.requests()
    assert {r.route for r in seen} == {
        "settle_cfb_bet", "open_bets", "store_price_bars", "get_match", "mark_match_settled",
        "orphan_holds", "release_hold", "create_settlement", "issue_reward", "ledger_invariants",
        "get_proof", "verify_proof", "record_verdict", "get_claim", "record_claim_receipt",
        "get_escrow", "transition_escrow", "check_member", "get_prices",
    }  # fmt: skip
    for request in seen:
        assert (request.authorization or "").startswith("Bearer "), request.route
        assert request.path.startswith(f"/{request.peer}/internal/v1/")
    posts = {
        r.path.removeprefix(f"/{r.peer}"): r.idempotency_key for r in seen if r.method == "POST"
    }
    assert posts == keys
    assert peers.tokens.minted == 6  # one token per audience, reused for every later call


async def test_the_private_key_never_shows_in_logs_errors_or_reprs(
    fake_peers: FakePeers,
    service_key: ServiceKey,
    private_jwk_text: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    import json

    d = json.loads(private_jwk_text)["d"]
    out = StringIO()
    configure_logging("debug", fmt="json", stream=out)
    caplog.set_level(logging.DEBUG)
    texts: list[str] = []
    try:
        _seed(fake_peers)
        async with open_peers(peers_config(fake_peers), service_key) as peers:
            await _call_every_method(peers)
            fake_peers.fail("playhub", "settle_cfb_bet", status=401)
            with pytest.raises(PeerAuthError) as auth:
                await peers.playhub.settle_cfb_bet("b_1", key="k")
            with pytest.raises(PeerPermanentError) as permanent:
                await peers.playhub.get_match("nope")
            for error in (auth.value, permanent.value):
                texts += [str(error), repr(error), error.body or ""]
            texts += [
                repr(peers),
                str(peers),
                repr(peers.tokens),
                repr(service_key),
                str(service_key),
            ]
    finally:
        structlog.reset_defaults()
    logged = out.getvalue()
    assert '"event": "peer.called"' in logged
    assert '"event": "peer.auth_rejected"' in logged
    for text in [logged, caplog.text, *texts]:
        assert d not in text
        assert "Bearer ey" not in text


@pytest.mark.parametrize("bet_id", ["b_é", "b_1\r\nX-Injected: 1", "b_\u200b"])
async def test_a_key_that_is_no_header_value_is_refused_for_good_before_sending(
    peers: Peers, fake_peers: FakePeers, bet_id: str
) -> None:
    """A producer's id with an accent or a newline: dead-lettered at once, never retried.

    httpx would raise UnicodeEncodeError (or a protocol error) on every attempt, which the
    engine retries until the attempts run out; the key can never be sent, so it is permanent.
    """
    fake_peers.state.add_bet(bet_id, t_end_ms=1)
    with pytest.raises(PeerPermanentError, match="is not a header value") as caught:
        await peers.playhub.settle_cfb_bet(bet_id, key=f"cfb.settle:{bet_id}")
    assert caught.value.peer == "playhub"
    assert "\r\n" not in str(caught.value)  # the key is shown escaped, never as raw header text
    assert fake_peers.requests() == []
