"""CFB (coin-flip bets): settling bets at their end, the lost-enqueue sweep, the price sampler."""

from __future__ import annotations

from tgworkers.engine import Processor, Schedule
from tgworkers.jobs.cfb.price_sample import SAMPLE_PRICES
from tgworkers.jobs.cfb.settle import SETTLE_BET
from tgworkers.jobs.cfb.sweep import SWEEP
from tgworkers.jobs.settings import requires_peers

CFB_SETTLE = Processor(
    name="cfb.settle",
    job_types=(SETTLE_BET, SWEEP),
    enabled_by="ENABLE_CFB_SETTLE",
    concurrency=16,
    schedules=(
        Schedule(job="cfb.settle.sweep", env="CRON_CFB_SETTLE_SWEEP", default="*/1 * * * *"),
    ),
    requires=requires_peers("playhub"),
)

PRICE_SAMPLER = Processor(
    name="cfb.price.sample",
    job_types=(SAMPLE_PRICES,),
    enabled_by="ENABLE_PRICE_SAMPLER",
    concurrency=1,
    schedules=(
        Schedule(job="cfb.price.sample", env="CRON_CFB_PRICE_SAMPLE", default="*/1 * * * *"),
    ),
    requires=(*requires_peers("price", "playhub"),),
)

__all__ = ["CFB_SETTLE", "PRICE_SAMPLER"]
