"""Campaigns: asynchronous proof verification and reward claims."""

from __future__ import annotations

from tgworkers.engine import Processor
from tgworkers.jobs.campaigns.claim import CLAIM_REWARD
from tgworkers.jobs.campaigns.verify_async import VERIFY_PROOF
from tgworkers.jobs.settings import requires_peers

CAMPAIGNS = Processor(
    name="campaigns",
    job_types=(VERIFY_PROOF, CLAIM_REWARD),
    enabled_by="ENABLE_CAMPAIGNS",
    concurrency=16,
    requires=requires_peers("campaigns", "discovery", "payhub"),
)

__all__ = ["CAMPAIGNS"]
