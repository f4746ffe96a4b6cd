"""Per-second budgets that bound per-job telemetry under load (docs/observability.md).

The defaults are here; a process's values (`TGW_HISTOGRAM_SAMPLES_PER_S`,
`TGW_PROCESS_SPANS_PER_S`) are parsed by the config layer and handed to `Telemetry`.
"""

from __future__ import annotations

import time
from typing import Final

_monotonic: Final = time.monotonic


class RateBudget:
    """At most `per_s` yeses per second: keeps per-job telemetry cheap under load.

    Below the budget every job is traced and measured; above it (tens of thousands
    of jobs per second) a fixed number per second is, which keeps the histograms'
    shape and the traces representative while the counters stay exact.
    """

    __slots__ = ("_count", "_ends", "closed_until", "per_s")

    def __init__(self, per_s: int) -> None:
        self.per_s = per_s
        self._ends = 0.0
        """When the current second of the monotonic clock ends (its yeses are `_count`)."""
        self._count = 0
        self.closed_until = 0.0
        """No yes before this monotonic time: a hot path compares the clock with it and
        skips the call (under load nearly every answer is no)."""

    def allow(self) -> bool:
        """One yes or no (a job's span or histogram record)."""
        if _monotonic() >= self._ends:
            self._next_second()
        self._count += 1
        if self._count <= self.per_s:
            return True
        self.closed_until = self._ends
        return False

    def take(self, n: int) -> int:
        """How many of `n` asks are yeses (the first ones): a batch's records, one check."""
        if _monotonic() >= self._ends:
            self._next_second()
        left = self.per_s - self._count
        self._count += n
        if n < left:
            return n
        self.closed_until = self._ends
        return max(left, 0)

    def left(self) -> int:
        """Yeses left in this second; asking spends none (`take` does)."""
        if _monotonic() >= self._ends:
            self._next_second()
        return max(self.per_s - self._count, 0)

    def _next_second(self) -> None:
        self._ends = float(int(_monotonic()) + 1)
        self._count = 0


HISTOGRAM_SAMPLES_PER_S: Final = 500
"""Default per-job histogram records per second and instrument (counters stay exact)."""
PROCESS_SPANS_PER_S: Final = 200
"""Default `process` spans per second per process; jobs beyond it run untraced."""
