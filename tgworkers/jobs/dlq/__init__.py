"""Operators' tools as jobs: replaying reviewed dead letters."""

from __future__ import annotations

from tgworkers.engine import Processor
from tgworkers.jobs.dlq.replay import REPLAY_DEAD_LETTERS

DLQ_REPLAYER = Processor(
    name="dlq.replay",
    job_types=(REPLAY_DEAD_LETTERS,),
    enabled_by="ENABLE_DLQ_REPLAYER",
    enabled_default=True,
    concurrency=1,
)

__all__ = ["DLQ_REPLAYER"]
