"""Payhub client: holds, settlements, rewards and the ledger's invariants."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Final, Literal
from urllib.parse import quote

import msgspec

from tgworkers.peers.answers import AnswerKind
from tgworkers.peers.http import PeerClient
from tgworkers.peers.models import Effect, Page, Payout, Reference, Wire

ReleaseReason = Literal["orphan_ttl", "escrow_expired", "match_cancelled", "escrow_refund"]
HOLD_NOT_ACTIVE: Final = "hold_not_active"


class ActiveHold(Wire, frozen=True, kw_only=True):
    """An active hold that nothing refers to (a candidate orphan)."""

    hold_id: str
    user_id: str
    amount: int
    currency: str
    created_at_ms: int = msgspec.field(name="createdAt")
    correlation_id: str | None = None


class HoldsPage(Page, frozen=True, kw_only=True):
    """One page of `ActiveHold`s."""

    items: list[ActiveHold]


class _Release(Wire, frozen=True, kw_only=True):
    reason: ReleaseReason


class HoldReleased(Wire, frozen=True, kw_only=True):
    """The hold after its release."""

    hold_id: str
    status: str


class SettlementRequest(Wire, frozen=True, kw_only=True):
    """Move `holds` to `payouts`; payouts may sum to less (the rest is the platform fee)."""

    settlement_id: str
    reference: Reference
    holds: Sequence[str]
    payouts: Sequence[Payout]


class SettlementDone(Wire, frozen=True, kw_only=True):
    """A settlement Payhub has booked."""

    settlement_id: str
    status: str


class RewardRequest(Wire, frozen=True, kw_only=True):
    """A reward to issue, keyed by `reward_id`."""

    reward_id: str
    user_id: str
    amount: int
    currency: str
    reference: Reference


class RewardIssued(Wire, frozen=True, kw_only=True):
    """A reward Payhub has issued."""

    reward_id: str
    status: str


class Violation(Wire, frozen=True, kw_only=True):
    """One broken ledger invariant."""

    code: str
    account: str
    detail: str = ""


class LedgerInvariants(Wire, frozen=True, kw_only=True):
    """The ledger's self-check."""

    ok: bool
    checked_at_ms: int = msgspec.field(name="checkedAt")
    violations: list[Violation] = msgspec.field(default_factory=list)


_HOLDS: Final = msgspec.json.Decoder(HoldsPage)
_RELEASED: Final = msgspec.json.Decoder(HoldReleased)
_SETTLEMENT: Final = msgspec.json.Decoder(SettlementDone)
_REWARD: Final = msgspec.json.Decoder(RewardIssued)
_INVARIANTS: Final = msgspec.json.Decoder(LedgerInvariants)


class PayhubClient(PeerClient):
    """Typed calls to Payhub (aud `payhub`)."""

    audience = "payhub"

    async def orphan_holds(
        self, *, created_before_ms: int, limit: int = 100
    ) -> AsyncIterator[ActiveHold]:
        """Active holds older than `created_before_ms` that nothing refers to, every page."""
        params: dict[str, str | int] = {
            "status": "active",
            "createdBefore": created_before_ms,
            "uncorrelated": "true",
            "limit": limit,
        }
        async for page in self._pages("/internal/v1/holds", params, _HOLDS, "orphan_holds"):
            for hold in page.items:
                yield hold

    async def release_hold(self, hold_id: str, *, reason: ReleaseReason, key: str) -> Effect:
        """Release a hold; `Effect.NOT_ACTIVE` when it was already released or settled."""
        answer, raw = await self._post(
            f"/internal/v1/holds/{quote(hold_id, safe='')}/release",
            _Release(reason=reason),
            key=key,
            success_codes=frozenset({HOLD_NOT_ACTIVE}),
        )
        if answer.kind is AnswerKind.SUCCESS_EQUIVALENT:
            return Effect.NOT_ACTIVE if answer.code == HOLD_NOT_ACTIVE else Effect.ALREADY_DONE
        self._decode(_RELEASED, raw, "release_hold")
        return Effect.APPLIED

    async def create_settlement(self, settlement: SettlementRequest, *, key: str) -> SettlementDone:
        """Settle holds to payouts; the contract's key is the `settlementId`.

        A 409 `hold_not_active` here is permanent (`PeerPermanentError`): a person must look.
        """
        _, raw = await self._post("/internal/v1/settlements", settlement, key=key)
        return self._decode(_SETTLEMENT, raw, "create_settlement")

    async def issue_reward(self, reward: RewardRequest, *, key: str) -> RewardIssued:
        _, raw = await self._post("/internal/v1/rewards", reward, key=key)
        return self._decode(_REWARD, raw, "issue_reward")

    async def ledger_invariants(self) -> LedgerInvariants:
        raw = await self._get("/internal/v1/ledger/invariants")
        return self._decode(_INVARIANTS, raw, "ledger_invariants")
