"""The job engine: what job modules and peer clients may import.

Only the names below are the job-facing API; everything else in this package is
the engine's own business. See contracts/engine.md for the promises it keeps.
"""

from tgworkers.engine.client import Client
from tgworkers.engine.context import JobContext, request_id_var
from tgworkers.engine.ops.audit import AuditLog
from tgworkers.engine.ops.dlq import DeadLetters
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
from tgworkers.engine.registry import JobType, Processor, Schedule
from tgworkers.engine.retry import RetryPolicy

__all__ = [
    "AuditLog",
    "Client",
    "DeadLetter",
    "DeadLetters",
    "Disposition",
    "Done",
    "JobContext",
    "JobSignal",
    "JobType",
    "NotDue",
    "Outcome",
    "PermanentError",
    "Processor",
    "RetryLater",
    "RetryPolicy",
    "Schedule",
    "Snooze",
    "request_id_var",
]
