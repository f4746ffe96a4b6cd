"""The platform's processors, listed explicitly (no autodiscovery).

The table of contracts/jobs.md, one `Processor` per row, declared in each area's
`__init__.py`; `run` selects among them with `--processors`, `PROCESSORS` or the
`ENABLE_*` flags.
"""

from __future__ import annotations

from tgworkers.engine import Processor
from tgworkers.jobs.builtin import NOOP_PROCESSOR
from tgworkers.jobs.campaigns import CAMPAIGNS
from tgworkers.jobs.cfb import CFB_SETTLE, PRICE_SAMPLER
from tgworkers.jobs.dlq import DLQ_REPLAYER
from tgworkers.jobs.escrow import ESCROW
from tgworkers.jobs.games import GAMES_SETTLEMENT
from tgworkers.jobs.payhub import LEDGER_RECALC, ORPHAN_HOLDS_GC

PROCESSORS: tuple[Processor, ...] = (
    CFB_SETTLE,
    PRICE_SAMPLER,
    GAMES_SETTLEMENT,
    ORPHAN_HOLDS_GC,
    LEDGER_RECALC,
    CAMPAIGNS,
    ESCROW,
    DLQ_REPLAYER,
    NOOP_PROCESSOR,
)
