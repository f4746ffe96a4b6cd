"""The platform's processors, listed explicitly (no autodiscovery)."""

from __future__ import annotations

from tgworkers.engine import Processor
from tgworkers.jobs.builtin import NOOP_PROCESSOR

PROCESSORS: tuple[Processor, ...] = (NOOP_PROCESSOR,)
