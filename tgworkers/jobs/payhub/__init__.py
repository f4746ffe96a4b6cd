"""Payhub reconciliation: the orphan-holds collector and the ledger invariants check."""

from __future__ import annotations

from tgworkers.engine import Processor, Schedule
from tgworkers.jobs.payhub.ledger_recalc import RECALC_LEDGER
from tgworkers.jobs.payhub.orphan_holds_gc import COLLECT_ORPHAN_HOLDS
from tgworkers.jobs.settings import requires_peers

ORPHAN_HOLDS_GC = Processor(
    name="payhub.orphan_holds.gc",
    job_types=(COLLECT_ORPHAN_HOLDS,),
    enabled_by="ENABLE_RECON_ORPHAN_HOLDS",
    concurrency=1,
    schedules=(
        Schedule(
            job="payhub.orphan_holds.gc", env="CRON_RECON_ORPHAN_HOLDS", default="*/10 * * * *"
        ),
    ),
    requires=requires_peers("payhub"),
)

LEDGER_RECALC = Processor(
    name="payhub.ledger.recalc",
    job_types=(RECALC_LEDGER,),
    enabled_by="ENABLE_LEDGER_RECALC",
    enabled_default=False,
    concurrency=1,
    schedules=(
        Schedule(job="payhub.ledger.recalc", env="CRON_LEDGER_RECALC", default="*/15 * * * *"),
    ),
    requires=requires_peers("payhub"),
)

__all__ = ["LEDGER_RECALC", "ORPHAN_HOLDS_GC"]
