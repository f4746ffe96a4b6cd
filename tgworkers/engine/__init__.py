"""The job engine: what job modules and peer clients may import.

Only the names below are the job-facing API; everything else in this package is
the engine's own business. See contracts/engine.md for the promises it keeps.
"""

from tgworkers.engine.outcome import (
    DeadLetter,
    Disposition,
    Done,
    JobSignal,
    NotDue,
    Outcome,
    PermanentError,
    RetryLater,
    Snooze,
)

__all__ = [
    "DeadLetter",
    "Disposition",
    "Done",
    "JobSignal",
    "NotDue",
    "Outcome",
    "PermanentError",
    "RetryLater",
    "Snooze",
]
