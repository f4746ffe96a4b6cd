"""Issue a campaign claim's reward, then record the receipt with Campaigns.

Reads the claim: `rewarded` is done; `rejected` is done and logged. Otherwise the
reward is issued by Payhub (`rewardId = claim:{claimId}`, also its key) and the
receipt recorded (`campaigns.claim:{claimId}:receipt`; 409 `already_done` is
success). The reward step is recorded in the job's step record, so a retry after
a crash goes straight to the receipt; Payhub dedupes the reward in any case.
"""

from __future__ import annotations

import msgspec
import structlog

from tgworkers.engine import Done, JobContext, Outcome
from tgworkers.jobs.shapes import one_per
from tgworkers.peers import Peers, Reference, RewardRequest
from tgworkers.peers.campaigns import Claim

log = structlog.get_logger("tgworkers.jobs.campaigns")


class ClaimReward(
    msgspec.Struct, frozen=True, kw_only=True, rename="camel", forbid_unknown_fields=True
):
    """Payload: {"claimId": "c_1"}."""

    claim_id: str


class Keys(msgspec.Struct, frozen=True, kw_only=True):
    """The reward id (= its Idempotency-Key) and the receipt's key of one claim."""

    reward_id: str
    receipt: str


def keys_for(p: ClaimReward) -> Keys:
    return Keys(reward_id=f"claim:{p.claim_id}", receipt=f"campaigns.claim:{p.claim_id}:receipt")


async def _issue(ctx: JobContext, peers: Peers, claim: Claim, keys: Keys) -> None:
    if await ctx.steps.is_done("reward"):
        return
    reward = RewardRequest(
        reward_id=keys.reward_id,
        user_id=claim.user_id,
        amount=claim.reward.amount,
        currency=claim.reward.currency,
        reference=Reference(kind="campaign", id=claim.campaign_id),
    )
    await peers.payhub.issue_reward(reward, key=keys.reward_id)
    await ctx.steps.mark_done("reward")


async def claim_reward(ctx: JobContext, payload: ClaimReward) -> Outcome:
    peers = ctx.resources(Peers)
    keys = keys_for(payload)
    claim = await peers.campaigns.get_claim(payload.claim_id)
    if claim.status == "rewarded":
        return Done()
    if claim.status == "rejected":
        log.info("campaigns.claim_rejected", claim_id=payload.claim_id)
        return Done()
    await _issue(ctx, peers, claim, keys)
    await peers.campaigns.record_claim_receipt(
        payload.claim_id,
        reward_id=keys.reward_id,
        issued_at_ms=ctx.now_ms(),
        key=keys.receipt,
    )
    log.info("campaigns.claim_rewarded", claim_id=payload.claim_id, amount=claim.reward.amount,
             currency=claim.reward.currency)  # fmt: skip
    return Done()


CLAIM_REWARD = one_per(
    lambda p: p.claim_id,
    name="campaigns.claim",
    payload=ClaimReward,
    handler=claim_reward,
    timeout_s=30.0,
)
