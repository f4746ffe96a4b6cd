"""Carry out a moderator's decision on a disputed escrow: release, refund or split.

`release` settles every hold to the seller; `split` settles them in one settlement
paying the seller `floor(held * splitBps / 10000)` minor units and the buyer the
remainder (per currency), so the payouts sum to exactly the held amount; both use
`settlementId = escrow:{escrowId}` (also its key). `refund` releases every hold to
the buyer (`escrow_refund`). Then the escrow moves to `released` / `split` /
`refunded`. A decision on an escrow already final is done and logged.

`splitBps` is checked by `validate_decision`: a bad one is refused at enqueue,
and dead-lettered before any call when it arrives raw on the wire.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from typing import Final, Literal

import msgspec
import structlog

from tgworkers.engine import Done, JobContext, Outcome
from tgworkers.jobs.escrow.steps import FINAL_STATUSES
from tgworkers.jobs.shapes import ReleaseKeys, one_per, release_holds
from tgworkers.peers import Payout, Peers, Reference, SettlementRequest
from tgworkers.peers.escrow import Escrow, TransitionTarget

log = structlog.get_logger("tgworkers.jobs.escrow")

BPS_WHOLE: Final = 10_000
TARGETS: Final[dict[str, TransitionTarget]] = {
    "release": "released",
    "refund": "refunded",
    "split": "split",
}


class AdjudicateEscrow(
    msgspec.Struct, frozen=True, kw_only=True, rename="camel", forbid_unknown_fields=True
):
    """Payload: {"escrowId", "decision", "splitBps"?, "moderatorId"}."""

    escrow_id: str
    decision: Literal["release", "refund", "split"]
    split_bps: int | None = None
    moderator_id: str


class Keys(ReleaseKeys, frozen=True, kw_only=True):
    """The settlement id (= its key) and the other Idempotency-Keys of one decision."""

    settlement_id: str
    transition: str


def keys_for(p: AdjudicateEscrow) -> Keys:
    return Keys(
        settlement_id=f"escrow:{p.escrow_id}",
        transition=f"escrow.adjudicate:{p.escrow_id}:transition",
        release_prefix=f"escrow.adjudicate:{p.escrow_id}:release:",
    )


def validate_decision(p: AdjudicateEscrow) -> None:
    """`splitBps` is required for `split`, only for `split`, and within 0..10000."""
    if p.split_bps is None:
        if p.decision == "split":
            raise ValueError("splitBps: required when decision is split")
        return
    if p.decision != "split":
        raise ValueError(f"splitBps: only allowed when decision is split, not {p.decision}")
    if not 0 <= p.split_bps <= BPS_WHOLE:
        raise ValueError(f"splitBps: expected an integer between 0 and 10000, got {p.split_bps}")


def split_amounts(held: int, split_bps: int) -> tuple[int, int]:
    """(seller, buyer) in minor units: the seller's share rounds down, the buyer gets the rest."""
    seller = held * split_bps // BPS_WHOLE
    return seller, held - seller


def payouts_for(escrow: Escrow, seller_bps: int) -> list[Payout]:
    """One payout per party and currency (zero amounts left out); sums equal the holds."""
    held: dict[str, int] = defaultdict(int)
    for hold in escrow.holds:
        held[hold.currency] += hold.amount
    payouts = []
    for currency, amount in sorted(held.items()):
        seller, buyer = split_amounts(amount, seller_bps)
        payouts += [
            Payout(user_id=user, amount=share, currency=currency)
            for user, share in ((escrow.seller_id, seller), (escrow.buyer_id, buyer))
            if share > 0
        ]
    return payouts


async def _settle(ctx: JobContext, peers: Peers, escrow: Escrow, bps: int, keys: Keys) -> None:
    request = SettlementRequest(
        settlement_id=keys.settlement_id,
        reference=Reference(kind="escrow", id=escrow.escrow_id),
        holds=[h.hold_id for h in escrow.holds],
        payouts=payouts_for(escrow, bps),
    )
    settle = functools.partial(peers.payhub.create_settlement, request, key=keys.settlement_id)
    await ctx.steps.once("settle", settle)


async def adjudicate_escrow(ctx: JobContext, payload: AdjudicateEscrow) -> Outcome:
    peers = ctx.resources(Peers)
    keys = keys_for(payload)
    escrow = await peers.escrow.get_escrow(payload.escrow_id)
    if escrow.status in FINAL_STATUSES:
        log.info("escrow.decision_ignored", escrow_id=escrow.escrow_id, status=escrow.status,
                 decision=payload.decision, moderator_id=payload.moderator_id)  # fmt: skip
        return Done()
    settlement_id: str | None = None
    if payload.decision == "refund":
        await release_holds(ctx, peers, escrow.holds, reason="escrow_refund", key_of=keys.release)
    else:
        bps = BPS_WHOLE if payload.decision == "release" else payload.split_bps or 0
        await _settle(ctx, peers, escrow, bps, keys)
        settlement_id = keys.settlement_id
    to = TARGETS[payload.decision]
    await peers.escrow.transition_escrow(
        escrow.escrow_id,
        to=to,
        settlement_id=settlement_id,
        key=keys.transition,
    )
    log.info("escrow.adjudicated", escrow_id=escrow.escrow_id, decision=payload.decision,
             split_bps=payload.split_bps, moderator_id=payload.moderator_id)  # fmt: skip
    return Done()


ADJUDICATE_ESCROW = one_per(
    lambda p: p.escrow_id,
    name="escrow.adjudicate",
    payload=AdjudicateEscrow,
    handler=adjudicate_escrow,
    exclusive=True,
    validate=validate_decision,
    timeout_s=60.0,
)
