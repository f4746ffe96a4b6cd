"""`bonus.grant`: pay a campaign bonus, record the receipt, follow up a day later.

Two steps, each under its own Idempotency-Key: Payhub issues the reward
(`bonus:{claimId}`), then Campaigns records the receipt. The first step is kept in
the job's step record, so a retry after a crash between the two does not pay twice.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

from tgworkers.engine import Done, JobContext, JobType, Outcome, Processor
from tgworkers.peers import Peers, Reference, RewardRequest

DAY_S = 86_400


class GrantBonus(
    msgspec.Struct, frozen=True, kw_only=True, rename="camel", forbid_unknown_fields=True
):
    """Payload: {"claimId": "c_1", "userId": "u_1", "amount": 50}."""

    claim_id: str
    user_id: str
    amount: Annotated[int, msgspec.Meta(gt=0)]


class FollowUp(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """Payload: {"userId": "u_1"}."""

    user_id: str


async def grant_bonus(ctx: JobContext, p: GrantBonus) -> Outcome:
    peers = ctx.resources(Peers)
    if not await ctx.steps.is_done("reward"):
        reward = RewardRequest(
            reward_id=f"bonus:{p.claim_id}",
            user_id=p.user_id,
            amount=p.amount,
            currency="STARS",
            reference=Reference(kind="campaign", id=p.claim_id),
        )
        await peers.payhub.issue_reward(reward, key=f"bonus:{p.claim_id}")
        await ctx.steps.mark_done("reward")
    await peers.campaigns.record_claim_receipt(
        p.claim_id,
        reward_id=f"bonus:{p.claim_id}",
        issued_at_ms=ctx.now_ms(),  # the worker's clock: a test's clock under the harness
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
    job_id=lambda p: f"bonus.grant:{p.claim_id}",  # enqueueing one claim twice is a no-op
    partition_key=lambda p: p.claim_id,
)
FOLLOW_UP = JobType(name="bonus.followup", payload=FollowUp, handler=follow_up)
BONUS = Processor(name="bonus", job_types=(GRANT, FOLLOW_UP))
APP = [BONUS]
"""What `tgworkers run --app your_module:APP` and the tests run."""
