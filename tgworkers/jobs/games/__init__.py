"""Games: settling matches whose game-server callback failed."""

from __future__ import annotations

from tgworkers.engine import Processor
from tgworkers.jobs.games.settlement import SETTLE_MATCH
from tgworkers.jobs.settings import requires_peers

GAMES_SETTLEMENT = Processor(
    name="games.settlement",
    job_types=(SETTLE_MATCH,),
    enabled_by="ENABLE_GAMES_SETTLEMENT",
    concurrency=16,
    requires=requires_peers("playhub", "payhub"),
)

__all__ = ["GAMES_SETTLEMENT"]
