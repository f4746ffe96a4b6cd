"""Expire an open escrow at its `expiresAt`: release its holds, then move it to `expired`.

Enqueued with `runAt = expiresAt` and job id `escrow.expire:{escrowId}`. An escrow
still open whose `expiresAt` moved later runs again at the new time without
spending an attempt. `disputed` is left alone (adjudication decides) and any final
status is done. Each hold release and the transition have their own key (from
`keys_for`); releases are recorded in the step record, so a run after a crash
sends only what is not known done.
"""

from __future__ import annotations

import msgspec
import structlog

from tgworkers.engine import Done, JobContext, Outcome, Snooze
from tgworkers.jobs.shapes import ReleaseKeys, one_per, release_holds
from tgworkers.peers import Peers

log = structlog.get_logger("tgworkers.jobs.escrow")


class ExpireEscrow(
    msgspec.Struct, frozen=True, kw_only=True, rename="camel", forbid_unknown_fields=True
):
    """Payload: {"escrowId": "e_1"}."""

    escrow_id: str


class Keys(ReleaseKeys, frozen=True, kw_only=True):
    """The Idempotency-Keys of one escrow's expiry."""

    transition: str


def keys_for(p: ExpireEscrow) -> Keys:
    return Keys(
        transition=f"escrow.expire:{p.escrow_id}:transition",
        release_prefix=f"escrow.expire:{p.escrow_id}:release:",
    )


async def expire_escrow(ctx: JobContext, payload: ExpireEscrow) -> Outcome:
    peers = ctx.resources(Peers)
    keys = keys_for(payload)
    escrow = await peers.escrow.get_escrow(payload.escrow_id)
    if escrow.status != "open":
        log.info("escrow.expiry_skipped", escrow_id=escrow.escrow_id, status=escrow.status)
        return Done()
    if escrow.expires_at_ms > ctx.now_ms():
        log.info(
            "escrow.expiry_moved", escrow_id=escrow.escrow_id, expires_at_ms=escrow.expires_at_ms
        )
        return Snooze(at_ms=escrow.expires_at_ms)
    await release_holds(ctx, peers, escrow.holds, reason="escrow_expired", key_of=keys.release)
    await peers.escrow.transition_escrow(escrow.escrow_id, to="expired", key=keys.transition)
    log.info("escrow.expired", escrow_id=escrow.escrow_id, holds=len(escrow.holds))
    return Done()


EXPIRE_ESCROW = one_per(
    lambda p: p.escrow_id,
    name="escrow.expire",
    payload=ExpireEscrow,
    handler=expire_escrow,
    exclusive=True,
    timeout_s=60.0,
)
