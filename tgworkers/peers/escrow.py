"""Escrow client: read an escrow, move it to its next state."""

from __future__ import annotations

from typing import Final, Literal
from urllib.parse import quote

import msgspec

from tgworkers.peers.answers import AnswerKind
from tgworkers.peers.http import PeerClient
from tgworkers.peers.models import Effect, Hold, Wire

EscrowStatus = Literal["open", "disputed", "expired", "released", "refunded", "split"]
TransitionTarget = Literal["expired", "released", "refunded", "split"]


class Escrow(Wire, frozen=True, kw_only=True):
    """An escrow deal with its holds."""

    escrow_id: str
    status: EscrowStatus
    expires_at_ms: int = msgspec.field(name="expiresAt")
    buyer_id: str
    seller_id: str
    holds: list[Hold] = msgspec.field(default_factory=list)


class _Transition(Wire, frozen=True, kw_only=True):
    to: TransitionTarget
    settlement_id: str | None


class EscrowMoved(Wire, frozen=True, kw_only=True):
    """The escrow's status after a transition."""

    escrow_id: str
    status: EscrowStatus


_ESCROW: Final = msgspec.json.Decoder(Escrow)
_MOVED: Final = msgspec.json.Decoder(EscrowMoved)


class EscrowClient(PeerClient):
    """Typed calls to Escrow (aud `escrow`)."""

    audience = "escrow"

    async def get_escrow(self, escrow_id: str) -> Escrow:
        raw = await self._get(f"/internal/v1/escrows/{quote(escrow_id, safe='')}")
        return self._decode(_ESCROW, raw, "get_escrow")

    async def transition_escrow(
        self,
        escrow_id: str,
        *,
        to: TransitionTarget,
        settlement_id: str | None = None,
        key: str,
    ) -> Effect:
        """Move an escrow; 409 `already_done` is success, `invalid_transition` permanent."""
        answer, raw = await self._post(
            f"/internal/v1/escrows/{quote(escrow_id, safe='')}/transition",
            _Transition(to=to, settlement_id=settlement_id),
            key=key,
        )
        if answer.kind is AnswerKind.SUCCESS_EQUIVALENT:
            return Effect.ALREADY_DONE
        self._decode(_MOVED, raw, "transition_escrow")
        return Effect.APPLIED
