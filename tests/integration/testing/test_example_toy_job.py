"""The example of docs/testing.md: a new job type tested only through `tgworkers.testing`.

`bonus.grant` pays a bonus through Payhub, records the receipt with Campaigns,
then schedules a follow-up a day later. It is declared here, as a job author
would declare a new one, and tested from the first `perform` to a crash between
its two steps and a day that passes in no time.
"""

from __future__ import annotations

from typing import Annotated

import msgspec
import pytest

from tgworkers.engine import Disposition, Done, JobContext, JobType, Outcome, Processor
from tgworkers.errors import InputError
from tgworkers.peers import Peers, Reference, RewardRequest
from tgworkers.testing import FakeClock, FakePeerService, assert_peer_called, perform

DAY_S = 86_400


class GrantBonus(
    msgspec.Struct, frozen=True, kw_only=True, rename="camel", forbid_unknown_fields=True
):
    claim_id: str
    user_id: str
    amount: Annotated[int, msgspec.Meta(gt=0)]


class FollowUp(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    user_id: str


async def grant_bonus(ctx: JobContext, p: GrantBonus) -> Outcome:
    peers = ctx.resources(Peers)
    if not await ctx.steps.is_done("reward"):
        reward = RewardRequest(
            reward_id=f"bonus:{p.claim_id}",
            user_id=p.user_id,
            amount=p.amount,
            currency="STARS",
            reference=Reference(kind="bonus", id=p.claim_id),
        )
        await peers.payhub.issue_reward(reward, key=f"bonus:{p.claim_id}")
        await ctx.steps.mark_done("reward")
    await peers.campaigns.record_claim_receipt(
        p.claim_id,
        reward_id=f"bonus:{p.claim_id}",
        issued_at_ms=ctx.now_ms(),
        key=f"bonus.grant:{p.claim_id}:receipt",
    )
    await ctx.enqueue("bonus.followup", {"userId": p.user_id}, delay_s=DAY_S)
    return Done()


async def follow_up(ctx: JobContext, p: FollowUp) -> Outcome:
    return Done()


GRANT = JobType(
    name="bonus.grant",
    payload=GrantBonus,
    handler=grant_bonus,
    job_id=lambda p: f"bonus.grant:{p.claim_id}",
    partition_key=lambda p: p.claim_id,
)
FOLLOW_UP = JobType(name="bonus.followup", payload=FollowUp, handler=follow_up)
BONUS = Processor(name="bonus", job_types=(GRANT, FOLLOW_UP))
APP = [BONUS]
PAYLOAD = {"claimId": "c_1", "userId": "u_1", "amount": 50}
REWARDS = "/internal/v1/rewards"
RECEIPT = "/internal/v1/claims/c_1/receipt"


@pytest.fixture
def peers() -> FakePeerService:
    service = FakePeerService()
    service.state.add_claim("c_1", campaign_id="cmp", user_id="u_1", amount=50)
    return service


# 1. the first test: the happy path, inline, no Redis
async def test_grant_pays_records_and_schedules_a_follow_up(peers):
    clock = FakeClock()
    done = await perform("bonus.grant", PAYLOAD, app=APP, peers=peers, clock=clock)
    assert done.disposition is Disposition.DONE
    assert_peer_called(peers.requests(), "payhub", "POST", REWARDS, idempotency_key="bonus:c_1")
    (receipt,) = assert_peer_called(peers.requests(), "campaigns", "POST", RECEIPT)
    assert receipt.body["issuedAt"] == clock.now_ms()
    done.assert_enqueued(
        "bonus.followup", payload={"userId": "u_1"}, at=clock.now_ms() + DAY_S * 1000
    )


# 2. bad input is refused as production refuses it
async def test_a_bad_payload_is_refused_naming_the_field():
    with pytest.raises(InputError, match=r"amount"):
        await perform("bonus.grant", {**PAYLOAD, "amount": 0}, app=APP)


# 3. a peer's answer decides the disposition
async def test_a_payhub_outage_is_retried(peers):
    peers.fail("payhub", "issue_reward", status=503)
    result = await perform("bonus.grant", PAYLOAD, app=APP, peers=peers)
    assert result.disposition is Disposition.RETRY
    result.assert_not_enqueued("bonus.followup")


# 4. a crash between the two steps: the retry skips the finished step, same keys
async def test_crash_between_steps_pays_once_and_finishes_on_retry(peers):
    peers.reset_connection("campaigns", "record_claim_receipt")
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
    assert peers.state.get("claims", "c_1")["status"] == "rewarded"


# 5. the real engine: enqueue, drain, and a day that passes without sleeping
async def test_end_to_end_the_follow_up_runs_a_day_later(tgw_worker, tgw_peers):
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
    h.assert_peer_called("payhub", "POST", REWARDS, idempotency_key="bonus:c_1", times=1)


# 6. what cannot succeed ends in the DLQ with the peer's reason
async def test_an_unknown_claim_is_dead_lettered(tgw_worker):
    async with tgw_worker("bonus", app=APP) as h:  # no claim seeded: Campaigns answers 404
        await h.enqueue("bonus.grant", PAYLOAD)
        await h.drain("bonus")
        dead = await h.assert_dead_lettered("bonus.grant", "bonus.grant:c_1", reason="404")
    assert dead.attempts == 1
