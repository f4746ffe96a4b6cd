"""`FakeClock`: time that moves only when a test says so.

It starts at the real time and `advance` moves it forward. A frozen clock (the
default, what `perform` uses) stands still between advances, so a test can assert
exact times. A ticking clock (what the worker harness uses) runs with real time
plus the total advanced: delayed jobs are due on Redis's clock, which a test cannot
stop, and the harness shifts what waits in Redis by the same step, so a job
delayed by an hour runs after `advance(3600)` and the fake peers agree it is due.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta


class FakeClock:
    """A callable clock in Unix seconds, like `time.time`."""

    def __init__(self, start: float | datetime | None = None, *, ticking: bool = False) -> None:
        if isinstance(start, datetime):
            start = start.timestamp() if start.tzinfo else start.replace(tzinfo=UTC).timestamp()
        self.ticking = ticking
        self._offset = 0.0 if start is None else float(start) - time.time()
        self._now = time.time() if start is None else float(start)

    def __call__(self) -> float:
        return time.time() + self._offset if self.ticking else self._now

    def now_ms(self) -> int:
        return int(self() * 1000)

    def skew_ms(self) -> int:
        """How far this clock is ahead of real time (Redis's clock), in ms."""
        return self.now_ms() - int(time.time() * 1000)

    def advance(self, by: float | timedelta) -> int:
        """Move forward by seconds (or a timedelta); returns the step in ms."""
        seconds = by.total_seconds() if isinstance(by, timedelta) else float(by)
        if seconds < 0:
            raise ValueError(f"a clock only moves forward; got {seconds:g} s")
        self._now += seconds
        self._offset += seconds
        return int(seconds * 1000)
