"""`FakeClock`: time that moves only when a test says so.

It starts at the real time (delayed jobs are due on Redis's clock, which a test
cannot stop), and `advance` moves it forward. The harness applies the same step
to what waits in Redis, so a job delayed by an hour runs after `advance(3600)`
without anyone sleeping.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta


class FakeClock:
    """A callable clock in Unix seconds, like `time.time`."""

    def __init__(self, start: float | datetime | None = None) -> None:
        if isinstance(start, datetime):
            start = start.timestamp() if start.tzinfo else start.replace(tzinfo=UTC).timestamp()
        self._now = time.time() if start is None else float(start)

    def __call__(self) -> float:
        return self._now

    def now_ms(self) -> int:
        return int(self._now * 1000)

    def advance(self, by: float | timedelta) -> int:
        """Move forward by seconds (or a timedelta); returns the step in ms."""
        seconds = by.total_seconds() if isinstance(by, timedelta) else float(by)
        if seconds < 0:
            raise ValueError(f"a clock only moves forward; got {seconds:g} s")
        self._now += seconds
        return int(seconds * 1000)
