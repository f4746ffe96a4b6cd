"""The `PeerError` tree: a peer's answer as one of the engine's signal errors.

Each class subclasses the engine signal that says what the job does next, so a
job handler holds only the happy path: a `PeerPermanentError` dead-letters the
job, a `PeerNotDueError` reschedules it without spending an attempt, and every
other class retries with backoff. Errors carry fields (`peer`, `status`, `code`,
`body` cut to 2 KiB); messages name the peer and the call, never a header or token.
"""

from __future__ import annotations

from tgworkers.engine import JobSignal, NotDue, PermanentError, RetryLater


class PeerError(JobSignal):
    """Root of every error raised by a peer client."""

    def __init__(
        self,
        message: str,
        *,
        peer: str,
        status: int | None = None,
        code: str | None = None,
        body: str | None = None,
    ) -> None:
        JobSignal.__init__(self, message, status=status, body=body)
        self.peer = peer
        self.code = code


class PeerPermanentError(PeerError, PermanentError):
    """The peer refused this payload for good (400/404/410/422, some 409 codes)."""


class PeerRetryableError(PeerError, RetryLater):
    """Base of the answers that are retried with backoff (at least `after_ms`)."""

    def __init__(
        self,
        message: str,
        *,
        peer: str,
        after_ms: int | None = None,
        status: int | None = None,
        code: str | None = None,
        body: str | None = None,
    ) -> None:
        PeerError.__init__(self, message, peer=peer, status=status, code=code, body=body)
        self.after_ms = after_ms


class PeerTransientError(PeerRetryableError):
    """408/429/500/502/503/504: the peer is busy or failing; `after_ms` from Retry-After."""


class PeerTimeoutError(PeerTransientError):
    """The peer did not answer within the connect or whole-request timeout."""


class PeerConnectionError(PeerTransientError):
    """The connection could not be made or broke before a whole answer arrived."""


class PeerAuthError(PeerRetryableError):
    """401/403: our credentials were refused; retried, since a key may be rotating."""


class PeerUnexpectedError(PeerRetryableError):
    """An answer outside the contract (unknown status or 409 code, bad or oversized body)."""


class PeerNotDueError(PeerError, NotDue):
    """425 or 409 `not_due`: too early; run again at `retry_at_ms` without spending an attempt."""

    def __init__(
        self,
        message: str,
        *,
        peer: str,
        retry_at_ms: int | None = None,
        status: int | None = None,
        code: str | None = None,
        body: str | None = None,
    ) -> None:
        PeerError.__init__(self, message, peer=peer, status=status, code=code, body=body)
        self.retry_at_ms = retry_at_ms
