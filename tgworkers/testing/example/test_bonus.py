"""Tests of `bonus.grant` with `tgworkers.testing`: inline first, then on the real engine.

In your project, import from your own job module instead of the example's.
"""

from __future__ import annotations

from typing import Any

import pytest

from tgworkers.engine import Disposition
from tgworkers.errors import InputError
from tgworkers.testing import FakeClock, FakePeerService, assert_peer_called, perform
from tgworkers.testing.example.bonus import APP, DAY_S

PAYLOAD = {"claimId": "c_1", "userId": "u_1", "amount": 50}
REWARDS = "/internal/v1/rewards"
RECEIPT = "/internal/v1/claims/c_1/receipt"


@pytest.fixture
def peers() -> FakePeerService:
    service = FakePeerService()  # in-process fakes: no server, no Redis
    service.state.add_claim("c_1", campaign_id="cmp", user_id="u_1", amount=50)
    return service


async def test_grant_pays_records_and_schedules_a_follow_up(peers: FakePeerService) -> None:
    clock = FakeClock()
    done = await perform("bonus.grant", PAYLOAD, app=APP, peers=peers, clock=clock)
    assert done.disposition is Disposition.DONE
    assert_peer_called(peers.requests(), "payhub", "POST", REWARDS, idempotency_key="bonus:c_1")
    (receipt,) = assert_peer_called(peers.requests(), "campaigns", "POST", RECEIPT)
    assert receipt.body["issuedAt"] == clock.now_ms()
    follow_at = clock.now_ms() + DAY_S * 1000
    done.assert_enqueued("bonus.followup", payload={"userId": "u_1"}, at=follow_at)


async def test_a_bad_payload_is_refused_naming_the_field() -> None:
    with pytest.raises(InputError, match=r"amount"):
        await perform("bonus.grant", {**PAYLOAD, "amount": 0}, app=APP)


async def test_a_payhub_outage_is_retried(peers: FakePeerService) -> None:
    peers.fail("payhub", "issue_reward", status=503)
    result = await perform("bonus.grant", PAYLOAD, app=APP, peers=peers)
    assert result.disposition is Disposition.RETRY
    result.assert_not_enqueued("bonus.followup")


async def test_crash_between_steps_pays_once_and_finishes_on_retry(
    peers: FakePeerService,
) -> None:
    peers.reset_connection("campaigns", "record_claim_receipt")  # the 2nd step's call dies
    first = await perform("bonus.grant", PAYLOAD, app=APP, peers=peers)
    assert first.disposition is Disposition.RETRY
    assert first.steps_done == {"reward"}
    second = await perform(
        "bonus.grant", PAYLOAD, app=APP, peers=peers, attempt=2, steps_done=first.steps_done
    )
    assert second.disposition is Disposition.DONE
    assert_peer_called(peers.requests(), "payhub", "POST", REWARDS, times=1)
    calls = assert_peer_called(peers.requests(), "campaigns", "POST", RECEIPT, times=2)
    assert {c.idempotency_key for c in calls} == {"bonus.grant:c_1:receipt"}


async def test_end_to_end_the_follow_up_runs_a_day_later(
    tgw_worker: Any, tgw_peers: FakePeerService
) -> None:
    tgw_peers.state.add_claim("c_1", campaign_id="cmp", user_id="u_1", amount=50)
    async with tgw_worker("bonus", app=APP) as h:
        await h.enqueue("bonus.grant", PAYLOAD)
        runs = await h.drain("bonus")
        follow = await h.assert_enqueued("bonus.followup", payload={"userId": "u_1"})
        assert follow.delayed
        await h.advance(DAY_S)
        later = await h.drain("bonus")
    assert [(r.name, r.outcome) for r in runs] == [("bonus.grant", "Done")]
    assert [(r.name, r.outcome) for r in later] == [("bonus.followup", "Done")]


async def test_drain_with_delayed_runs_the_follow_up_too(
    tgw_worker: Any, tgw_peers: FakePeerService
) -> None:
    tgw_peers.state.add_claim("c_1", campaign_id="cmp", user_id="u_1", amount=50)
    async with tgw_worker("bonus", app=APP) as h:
        await h.enqueue("bonus.grant", PAYLOAD)
        runs = await h.drain("bonus", with_delayed=True)  # a day passes: every delayed job runs
    assert [(r.name, r.outcome) for r in runs] == [
        ("bonus.grant", "Done"),
        ("bonus.followup", "Done"),
    ]


async def test_an_unknown_claim_is_dead_lettered(tgw_worker: Any) -> None:
    async with tgw_worker("bonus", app=APP) as h:  # no claim seeded: Campaigns answers 404
        await h.enqueue("bonus.grant", PAYLOAD)
        await h.drain("bonus")
        dead = await h.assert_dead_lettered("bonus.grant", "bonus.grant:c_1", reason="404")
    assert dead.attempts == 1
