"""SIGTERM/SIGINT received while a process is still starting.

The worker listens for signals only once it runs; start-up (reading the first
config document, building the parts) comes before that. A stop asked for in that
window is remembered here and handed to the worker as soon as it runs, so the
process still stops gracefully (exit 0) instead of dying by the default action.
"""

from __future__ import annotations

import signal
from types import FrameType

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class EarlySignals:
    """Records a stop signal until the worker's own receiver takes over."""

    def __init__(self) -> None:
        self.received: signal.Signals | None = None

    def install(self) -> EarlySignals:
        for signum in SIGNALS:
            signal.signal(signum, self._record)
        return self

    def _record(self, signum: int, _: FrameType | None) -> None:
        self.received = signal.Signals(signum)
