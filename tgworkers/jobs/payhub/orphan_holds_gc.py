"""Release holds nothing refers to once they are older than a TTL.

Lists Payhub's active, uncorrelated holds created before `now - ttl` (TTL from the
payload's `ttlMs`, else `ORPHAN_HOLD_TTL_MS`) and releases each with
`reason: orphan_ttl` and the key `payhub.orphan_holds.gc:{holdId}`. A hold that is
no longer active is skipped. One failing hold does not stop the others: it is
counted as failed, stays active, and is listed (and tried) again on the next run.

The list is read whole before releasing: releasing while paging would shift an
offset cursor past holds not yet seen.
"""

from __future__ import annotations

import msgspec
import structlog

from tgworkers.engine import Done, JobContext, JobType, Outcome
from tgworkers.jobs.settings import JobSettings
from tgworkers.peers import Effect, PeerError, Peers

log = structlog.get_logger("tgworkers.jobs.payhub")


class CollectOrphanHolds(
    msgspec.Struct, frozen=True, kw_only=True, rename="camel", forbid_unknown_fields=True
):
    """Payload: `{}` or `{"ttlMs": 3600000}`."""

    ttl_ms: int | None = None


class GcCounts(msgspec.Struct, kw_only=True):
    """What one run did with the holds it listed."""

    released: int = 0
    skipped: int = 0
    failed: int = 0


def validate_gc(p: CollectOrphanHolds) -> None:
    if p.ttl_ms is not None and p.ttl_ms < 0:
        raise ValueError(f"ttlMs: expected an integer >= 0, got {p.ttl_ms}")


async def _release(peers: Peers, hold_id: str, counts: GcCounts) -> None:
    try:
        effect = await peers.payhub.release_hold(
            hold_id, reason="orphan_ttl", key=f"payhub.orphan_holds.gc:{hold_id}"
        )
    except PeerError as exc:  # keep going: the hold stays active and is retried next run
        counts.failed += 1
        log.warning(
            "orphan_hold.release_failed", hold_id=hold_id, status=exc.status, error=str(exc)
        )
        return
    if effect is Effect.APPLIED:
        counts.released += 1
    else:
        counts.skipped += 1


async def collect_orphan_holds(ctx: JobContext, payload: CollectOrphanHolds) -> Outcome:
    peers = ctx.resources(Peers)
    ttl_ms = (
        payload.ttl_ms
        if payload.ttl_ms is not None
        else ctx.resources(JobSettings).orphan_hold_ttl_ms
    )
    created_before = ctx.now_ms() - ttl_ms
    hold_ids = [
        h.hold_id async for h in peers.payhub.orphan_holds(created_before_ms=created_before)
    ]
    counts = GcCounts()
    for hold_id in hold_ids:
        await _release(peers, hold_id, counts)
    log.info(
        "orphan_holds.collected",
        released=counts.released,
        skipped=counts.skipped,
        failed=counts.failed,
        created_before_ms=created_before,
    )
    return Done()


COLLECT_ORPHAN_HOLDS = JobType(
    name="payhub.orphan_holds.gc",
    payload=CollectOrphanHolds,
    handler=collect_orphan_holds,
    validate=validate_gc,
    timeout_s=600.0,
)
