"""Re-enqueue CFB bets whose settle job was lost (the safety net of `cfb.settle`).

Pages through PlayHub's open bets that ended more than a grace period ago and
enqueues `cfb.settle` for each with its deterministic job id, so a bet whose job
is still queued (or delayed, or dead-lettered) is not queued a second time.
"""

from __future__ import annotations

import msgspec
import structlog

from tgworkers.engine import Done, JobContext, JobType, Outcome
from tgworkers.jobs.cfb.settle import settle_job_id
from tgworkers.jobs.settings import JobSettings
from tgworkers.peers import Peers

log = structlog.get_logger("tgworkers.jobs.cfb")


class SweepBets(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Payload: `{}` (scheduled)."""


async def sweep_bets(ctx: JobContext, payload: SweepBets) -> Outcome:
    peers = ctx.resources(Peers)
    grace_ms = ctx.resources(JobSettings).cfb_sweep_grace_ms
    ends_before = ctx.now_ms() - grace_ms
    seen = created = 0
    async for bet in peers.playhub.open_bets(ends_before_ms=ends_before):
        seen += 1
        result = await ctx.enqueue(
            "cfb.settle", {"betId": bet.bet_id}, id=settle_job_id(bet.bet_id)
        )
        if result.created:
            created += 1
            log.warning("cfb.bet_requeued", bet_id=bet.bet_id, t_end_ms=bet.t_end_ms)
    log.info("cfb.sweep_finished", open_bets=seen, requeued=created, ends_before_ms=ends_before)
    return Done()


SWEEP = JobType(name="cfb.settle.sweep", payload=SweepBets, handler=sweep_bets, timeout_s=120.0)
