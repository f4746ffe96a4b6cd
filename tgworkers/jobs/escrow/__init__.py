"""Escrow: expiry at `expiresAt` and moderators' decisions, one job per escrow at a time."""

from __future__ import annotations

from tgworkers.engine import Processor
from tgworkers.jobs.escrow.adjudicate import ADJUDICATE_ESCROW
from tgworkers.jobs.escrow.expire import EXPIRE_ESCROW
from tgworkers.jobs.settings import requires_peers

ESCROW = Processor(
    name="escrow",
    job_types=(EXPIRE_ESCROW, ADJUDICATE_ESCROW),
    enabled_by="ENABLE_ESCROW",
    concurrency=16,
    requires=requires_peers("escrow", "payhub"),
)

__all__ = ["ESCROW"]
