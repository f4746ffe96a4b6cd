"""Move reviewed dead-lettered jobs back onto their queue, at a bounded rate.

Replays `ids` (or `all`) of one queue's DLQ through the engine's `DeadLetters`,
the same service the CLI and admin API use: each job keeps its id, so peers see
the same Idempotency-Keys, and its history gets "replayed by {by}". `by` defaults
to the job's origin (who enqueued the replay). One job at a time, at most
`ratePerSec` per second. An id no longer in the DLQ is skipped and reported; so a
replay run again after a crash skips what it already moved. Each run appends one
entry to the audit stream (`via: job`, `who`: `by`, action `dlq.requeue`) with the
counts and the ids moved, also when it stops part-way (what it moved so far).
"""

from __future__ import annotations

import asyncio
import time
from typing import Final

import msgspec
import structlog

from tgworkers.engine import (
    AuditLog,
    DeadLetters,
    Done,
    JobContext,
    JobType,
    Outcome,
    PermanentError,
)

log = structlog.get_logger("tgworkers.jobs.dlq")

DEFAULT_RATE: Final = 10
MAX_RATE: Final = 1000


class ReplayDeadLetters(
    msgspec.Struct, frozen=True, kw_only=True, rename="camel", forbid_unknown_fields=True
):
    """Payload: {"queue", "ids"?: [...], "all"?: bool, "resetAttempts"?, "ratePerSec"?, "by"?}."""

    queue: str
    ids: list[str] | None = None
    all: bool = False
    reset_attempts: bool = False
    rate_per_sec: int = DEFAULT_RATE
    by: str | None = None


def validate_replay(p: ReplayDeadLetters) -> None:
    if p.all == bool(p.ids):
        raise ValueError("ids: give a non-empty ids list or all=true, not both")
    if not 1 <= p.rate_per_sec <= MAX_RATE:
        raise ValueError(f"ratePerSec: expected an integer between 1 and {MAX_RATE}")


async def _targets(dlq: DeadLetters, p: ReplayDeadLetters) -> list[str]:
    if p.ids:
        return list(dict.fromkeys(p.ids))
    return [job.id async for job in dlq.iterate(p.queue)]


async def replay_dead_letters(ctx: JobContext, payload: ReplayDeadLetters) -> Outcome:
    dlq = ctx.resources(DeadLetters)
    if payload.queue not in dlq.registry.processors:
        raise PermanentError(f"queue: no queue named {payload.queue!r}")
    by = payload.by or ctx.origin or f"job:{ctx.name}:{ctx.job_id}"
    interval_s = 1.0 / payload.rate_per_sec
    requeued: list[str] = []
    skipped: list[str] = []
    try:
        for job_id in await _targets(dlq, payload):
            started = time.monotonic()
            result = await dlq.requeue(
                payload.queue, [job_id], reset_attempts=payload.reset_attempts, by=by
            )
            requeued += result["ids"]
            skipped += result["skipped"]
            await asyncio.sleep(max(0.0, interval_s - (time.monotonic() - started)))
    finally:
        if requeued:  # what moved is recorded, also when the run stopped part-way
            await AuditLog(dlq.redis, dlq.layout.globals.audit).record(
                via="job", who=by, role="admin", action="dlq.requeue", target=payload.queue,
                queue=payload.queue, requeued=len(requeued), skipped=len(skipped),
                ids=requeued[:100], job_id=ctx.job_id,
            )  # fmt: skip
    if skipped:
        log.warning("dlq.replay_skipped", queue=payload.queue, ids=skipped)
    log.info("dlq.replayed", queue=payload.queue, requeued=len(requeued), skipped=len(skipped),
             by=by, ids=requeued)  # fmt: skip
    return Done()


REPLAY_DEAD_LETTERS = JobType(
    name="dlq.replay",
    payload=ReplayDeadLetters,
    handler=replay_dead_letters,
    validate=validate_replay,
    timeout_s=900.0,
)
