"""Check Payhub's ledger invariants and make every violation page someone.

Each violation is logged at error level (`ledger.violation`, with its code and
account) and counted by code, so an alert can fire on the count. There is no
metrics module yet: `VIOLATIONS` keeps the counts in process, and every callable in
`violation_hooks` is called as `hook(code)` per violation, which is where the
observability work attaches its `tgworkers.ledger.violations` counter.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import msgspec
import structlog

from tgworkers.engine import Done, JobContext, JobType, Outcome
from tgworkers.peers import Peers

log = structlog.get_logger("tgworkers.jobs.payhub")

VIOLATIONS: Counter[str] = Counter()
"""Violations seen by this process, by code (the metric's value until it is exported)."""

violation_hooks: list[Callable[[str], None]] = []
"""Called with the violation's code once per violation (metric exporters append here)."""


class RecalcLedger(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Payload: `{}` (scheduled)."""


def count_violation(code: str) -> None:
    VIOLATIONS[code] += 1
    for hook in violation_hooks:
        hook(code)


async def recalc_ledger(ctx: JobContext, payload: RecalcLedger) -> Outcome:
    report = await ctx.resources(Peers).payhub.ledger_invariants()
    for violation in report.violations:
        log.error(
            "ledger.violation",
            code=violation.code,
            account=violation.account,
            detail=violation.detail,
            checked_at_ms=report.checked_at_ms,
        )
        count_violation(violation.code)
    log.info("ledger.checked", ok=report.ok, violations=len(report.violations))
    return Done()


RECALC_LEDGER = JobType(
    name="payhub.ledger.recalc", payload=RecalcLedger, handler=recalc_ledger, timeout_s=60.0
)
