"""What a handler can tell the engine, and what the engine decides from it.

A handler *returns* an `Outcome` for decisions the job itself makes (`Done`,
`Snooze`, `DeadLetter`) and *raises* for failures. Raised errors are classified
by `tgworkers.engine.retry.classify`:

- `PermanentError`: dead-lettered at once, no retry;
- `NotDue`: rescheduled for `retry_at_ms`, the attempt is not spent;
- `RetryLater` and any other exception: retried with backoff, the attempt spent;
  `RetryLater.after_ms` is honoured when it is longer than the backoff.

Peer clients raise subclasses of these, so job handlers hold only the happy path.
"""

from __future__ import annotations

import enum

import msgspec


class JobSignal(Exception):  # noqa: N818 - a signal to the engine, not only an error
    """Base of the exceptions a handler raises to direct the engine.

    `status` and `body` (a peer's HTTP status and its body, already cut to 2 KiB)
    are kept in the job's error history when set. They never hold request headers.
    """

    def __init__(self, message: str, *, status: int | None = None, body: str | None = None):
        super().__init__(message)
        self.message = message
        self.status = status
        self.body = body


class PermanentError(JobSignal):
    """The job can never succeed with this payload: dead-letter it at once."""


class RetryLater(JobSignal):
    """A transient failure: retry after backoff (at least `after_ms` when given)."""

    def __init__(
        self,
        message: str,
        *,
        after_ms: int | None = None,
        status: int | None = None,
        body: str | None = None,
    ):
        super().__init__(message, status=status, body=body)
        self.after_ms = after_ms


class NotDue(JobSignal):
    """Too early: run again at `retry_at_ms` (Unix ms) without spending an attempt.

    With `retry_at_ms=None` the job runs again after the backoff of its current attempt.
    """

    def __init__(
        self,
        message: str = "not due yet",
        *,
        retry_at_ms: int | None = None,
        status: int | None = None,
        body: str | None = None,
    ):
        super().__init__(message, status=status, body=body)
        self.retry_at_ms = retry_at_ms


class Done(msgspec.Struct, frozen=True):
    """The job finished; it is acknowledged and removed from its queue."""


class Snooze(msgspec.Struct, frozen=True, kw_only=True):
    """Run the job again later without spending an attempt.

    Exactly one of `at_ms` (Unix ms) or `after_ms` should be given.
    """

    at_ms: int | None = None
    after_ms: int | None = None


class DeadLetter(msgspec.Struct, frozen=True):
    """Move the job to its queue's dead-letter stream with `reason`."""

    reason: str


Outcome = Done | Snooze | DeadLetter


class Disposition(enum.Enum):
    """The closed set of ways one run of a job can be settled."""

    DONE = "done"
    RETRY = "retry"
    SNOOZE = "snooze"
    DEAD = "dead"


class DeadReason(enum.Enum):
    """Why a job was dead-lettered: the low-cardinality label of the metric.

    Carried on the decision by whoever decides, never recovered from message text.
    """

    EXHAUSTED = "exhausted"
    """The handler failed on its last allowed attempt."""
    PERMANENT = "permanent"
    """The handler raised a `PermanentError` (a peer's 4xx, for example)."""
    HANDLER = "handler"
    """The handler returned `DeadLetter`."""
    INVALID = "invalid"
    """No handler ran: a malformed entry, an unknown job name or an invalid payload."""
    POISON = "poison"
    """Delivered more than `MAX_DELIVERIES` times without settling (it kills workers)."""
    EXPIRED = "expired"
    """It came due after its deadline (`expires_ms`): dead-lettered instead of run."""
    CANCELLED = "cancelled"
    """An operator cancelled the running job (job_actions.py); the reason names who."""
