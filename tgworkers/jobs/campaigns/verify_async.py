"""Verify a campaign proof out of band, then queue its reward claim.

Reads the proof; a proof already `verified` or `rejected` is done. A `channel_join`
proof is checked through Discovery (is the user a member of `channelId`) and the
verdict recorded with `POST /proofs/{id}/verdict`; any other kind runs the
campaign's own check, `POST /proofs/{id}/verify`. `pending` runs again at `retryAt`
(or after backoff) without spending an attempt, until `CAMPAIGN_PROOF_DEADLINE_MS`
after the job was first enqueued; then it is dead-lettered. A proof that ends
`verified` with `autoClaim` and a known `claimId` gets `campaigns.claim {claimId}`
enqueued (job id `campaigns.claim:{claimId}`, so never twice).

A crash after the verdict but before the enqueue: the next run sees the proof
final, and the step record (`verdict`) says this job decided it, so it finishes
the enqueue instead of stopping.
"""

from __future__ import annotations

from typing import Literal

import msgspec
import structlog

from tgworkers.engine import (
    DeadLetter,
    Done,
    JobContext,
    NotDue,
    Outcome,
    PermanentError,
)
from tgworkers.jobs.settings import JobSettings
from tgworkers.jobs.shapes import one_per
from tgworkers.peers import Peers
from tgworkers.peers.campaigns import Proof

log = structlog.get_logger("tgworkers.jobs.campaigns")


class VerifyProof(
    msgspec.Struct, frozen=True, kw_only=True, rename="camel", forbid_unknown_fields=True
):
    """Payload: {"proofId": "p_1"}."""

    proof_id: str


class Keys(msgspec.Struct, frozen=True, kw_only=True):
    """The Idempotency-Keys of one proof's verification."""

    verify: str
    verdict: str


def keys_for(p: VerifyProof) -> Keys:
    return Keys(
        verify=f"campaigns.verify_async:{p.proof_id}:verify",
        verdict=f"campaigns.verify_async:{p.proof_id}:verdict",
    )


async def _channel_join(
    peers: Peers, proof: Proof, keys: Keys
) -> tuple[Literal["verified", "rejected"], str | None]:
    """Ask Discovery, record the verdict; returns (verdict, claimId)."""
    if proof.channel_id is None:
        raise PermanentError(f"proof {proof.proof_id}: channel_join without a channelId")
    membership = await peers.discovery.check_member(proof.channel_id, proof.user_id)
    verdict: Literal["verified", "rejected"] = "verified" if membership.member else "rejected"
    reason = "member of the channel" if membership.member else "not a member of the channel"
    recorded = await peers.campaigns.record_verdict(
        proof.proof_id, verdict=verdict, reason=reason, key=keys.verdict
    )
    return verdict, recorded.claim_id


async def _pending(ctx: JobContext, proof_id: str, retry_at_ms: int | None) -> Outcome:
    """Not decided yet: run again without spending an attempt, until the deadline."""
    deadline_ms = ctx.enqueued_ms + ctx.resources(JobSettings).campaign_proof_deadline_ms
    if ctx.now_ms() >= deadline_ms:
        log.warning("campaigns.proof_deadline_passed", proof_id=proof_id, deadline_ms=deadline_ms)
        return DeadLetter(f"proof {proof_id} still pending at its deadline ({deadline_ms})")
    at_ms = min(retry_at_ms, deadline_ms) if retry_at_ms is not None else None
    raise NotDue(f"proof {proof_id} is pending", retry_at_ms=at_ms)


async def _auto_claim(ctx: JobContext, proof: Proof, claim_id: str | None) -> None:
    if not proof.auto_claim or claim_id is None:
        return
    result = await ctx.enqueue("campaigns.claim", {"claimId": claim_id})
    log.info("campaigns.claim_enqueued", proof_id=proof.proof_id, claim_id=claim_id,
             created=result.created)  # fmt: skip


async def verify_proof(ctx: JobContext, payload: VerifyProof) -> Outcome:
    peers = ctx.resources(Peers)
    keys = keys_for(payload)
    proof = await peers.campaigns.get_proof(payload.proof_id)
    if proof.status != "pending":
        # verified already: by our crashed run before its enqueue, or by Campaigns on its
        # own after a `pending` answer; the claim job id dedupes, so enqueueing is safe
        if proof.status == "verified":
            await _auto_claim(ctx, proof, proof.claim_id)
        return Done()
    if proof.kind == "channel_join":
        verdict, claim_id = await _channel_join(peers, proof, keys)
    else:
        checked = await peers.campaigns.verify_proof(proof.proof_id, key=keys.verify)
        if checked.verdict == "pending":
            return await _pending(ctx, proof.proof_id, checked.retry_at_ms)
        verdict = checked.verdict
        claim_id = (
            (await peers.campaigns.get_proof(proof.proof_id)).claim_id
            if verdict == "verified"
            else None
        )
    await ctx.steps.mark_done("verdict")
    log.info("campaigns.proof_decided", proof_id=proof.proof_id, verdict=verdict)
    if verdict == "verified":
        await _auto_claim(ctx, proof, claim_id)
    return Done()


VERIFY_PROOF = one_per(
    lambda p: p.proof_id,
    name="campaigns.verify_async",
    payload=VerifyProof,
    handler=verify_proof,
    timeout_s=30.0,
)
