"""Campaigns client: proofs, their verification and verdicts, and claims' receipts."""

from __future__ import annotations

from typing import Final, Literal
from urllib.parse import quote

import msgspec

from tgworkers.peers.answers import AnswerKind
from tgworkers.peers.http import PeerClient
from tgworkers.peers.models import Effect, Money, Wire


class Proof(Wire, frozen=True, kw_only=True):
    """A user's proof of a campaign task."""

    proof_id: str
    campaign_id: str
    user_id: str
    kind: Literal["channel_join", "external"]
    channel_id: str | None = None
    status: Literal["pending", "verified", "rejected"]
    auto_claim: bool = False
    claim_id: str | None = None


class ProofVerification(Wire, frozen=True, kw_only=True):
    """The campaign's own check; `pending` comes with `retry_at_ms` (or None for backoff)."""

    verdict: Literal["verified", "rejected", "pending"]
    reason: str = ""
    retry_at_ms: int | None = msgspec.field(default=None, name="retryAt")


class _Verdict(Wire, frozen=True, kw_only=True):
    verdict: Literal["verified", "rejected"]
    reason: str


class VerdictRecorded(Wire, frozen=True, kw_only=True):
    """The proof after a recorded verdict; a claim may have been created."""

    proof_id: str
    status: str
    claim_id: str | None = None


class Claim(Wire, frozen=True, kw_only=True):
    """A reward claim and its state."""

    claim_id: str
    campaign_id: str
    user_id: str
    reward: Money
    status: Literal["queued", "rewarded", "rejected"]


class _Receipt(Wire, frozen=True, kw_only=True):
    reward_id: str
    issued_at_ms: int = msgspec.field(name="issuedAt")


class ReceiptRecorded(Wire, frozen=True, kw_only=True):
    """The claim after its receipt was recorded."""

    claim_id: str
    status: str


_PROOF: Final = msgspec.json.Decoder(Proof)
_VERIFICATION: Final = msgspec.json.Decoder(ProofVerification)
_VERDICT: Final = msgspec.json.Decoder(VerdictRecorded)
_CLAIM: Final = msgspec.json.Decoder(Claim)
_RECEIPT: Final = msgspec.json.Decoder(ReceiptRecorded)


def _proof_path(proof_id: str, tail: str = "") -> str:
    return f"/internal/v1/proofs/{quote(proof_id, safe='')}{tail}"


class CampaignsClient(PeerClient):
    """Typed calls to Campaigns (aud `campaigns`)."""

    audience = "campaigns"

    async def get_proof(self, proof_id: str) -> Proof:
        return self._decode(_PROOF, await self._get(_proof_path(proof_id)), "get_proof")

    async def verify_proof(self, proof_id: str, *, key: str) -> ProofVerification:
        """Run the campaign's own check (kinds other than `channel_join`)."""
        _, raw = await self._post(_proof_path(proof_id, "/verify"), None, key=key)
        return self._decode(_VERIFICATION, raw, "verify_proof")

    async def record_verdict(
        self, proof_id: str, *, verdict: Literal["verified", "rejected"], reason: str, key: str
    ) -> VerdictRecorded:
        """Record the outcome of a `channel_join` check made through Discovery."""
        body = _Verdict(verdict=verdict, reason=reason)
        _, raw = await self._post(_proof_path(proof_id, "/verdict"), body, key=key)
        return self._decode(_VERDICT, raw, "record_verdict")

    async def get_claim(self, claim_id: str) -> Claim:
        raw = await self._get(f"/internal/v1/claims/{quote(claim_id, safe='')}")
        return self._decode(_CLAIM, raw, "get_claim")

    async def record_claim_receipt(
        self, claim_id: str, *, reward_id: str, issued_at_ms: int, key: str
    ) -> Effect:
        """Tell Campaigns the reward was issued; 409 `already_done` is success."""
        answer, raw = await self._post(
            f"/internal/v1/claims/{quote(claim_id, safe='')}/receipt",
            _Receipt(reward_id=reward_id, issued_at_ms=issued_at_ms),
            key=key,
        )
        if answer.kind is AnswerKind.SUCCESS_EQUIVALENT:
            return Effect.ALREADY_DONE
        self._decode(_RECEIPT, raw, "record_claim_receipt")
        return Effect.APPLIED
