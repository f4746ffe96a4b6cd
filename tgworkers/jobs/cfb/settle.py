"""Settle one CFB bet once its round has ended.

PlayHub enqueues this at tEnd with job id cfb.settle:{betId}; a second enqueue is a no-op,
and the minute sweep re-enqueues any bet that was lost. Safe to run twice: the peer
dedupes on the Idempotency-Key, which is derived from the bet, never random.
"""

from __future__ import annotations

import msgspec
import structlog

from tgworkers.engine import Done, JobContext, JobType, Outcome
from tgworkers.peers import Peers

log = structlog.get_logger("tgworkers.jobs.cfb")


class SettleBet(
    msgspec.Struct, frozen=True, kw_only=True, rename="camel", forbid_unknown_fields=True
):
    """Payload: {"betId": "b_123"}."""

    bet_id: str


def settle_job_id(bet_id: str) -> str:
    """The deterministic job id, shared with the sweep so a bet is never queued twice."""
    return f"cfb.settle:{bet_id}"


async def settle_bet(ctx: JobContext, payload: SettleBet) -> Outcome:
    peers = ctx.resources(Peers)
    settled = await peers.playhub.settle_cfb_bet(payload.bet_id, key=f"cfb.settle:{payload.bet_id}")
    log.info("cfb.bet_settled", bet_id=payload.bet_id, status=settled.status)
    return Done()  # 409 not_due surfaces as NotDue (snoozed to retryAt); 404 dead-letters


SETTLE_BET = JobType(
    name="cfb.settle",
    payload=SettleBet,
    handler=settle_bet,
    job_id=lambda p: settle_job_id(p.bet_id),
    partition_key=lambda p: p.bet_id,
    timeout_s=30.0,
)
