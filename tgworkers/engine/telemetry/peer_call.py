"""What one call to a peer service answered, for its CLIENT span and duration metric.

`Telemetry.peer_call` makes one per request; `PeerClient._call` fills it in. Kept apart
from the recorder: it is the peers' side of telemetry, not the engine's.
"""

from __future__ import annotations

from dataclasses import dataclass

from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode

from tgworkers.engine.telemetry.catalogue import A

__all__ = ["PeerCall"]


@dataclass(slots=True)
class PeerCall:
    """What one peer call answered, filled in by `PeerClient._call`."""

    peer: str
    method: str
    status: int | None = None
    outcome: str = "error"
    error: str | None = None
    span: trace.Span | None = None

    def answered(self, status: int, outcome: str) -> None:
        self.status, self.outcome = status, outcome
        if self.span is not None:
            self.span.set_attribute(A.HTTP_STATUS, status)
            self.span.set_attribute(A.PEER_OUTCOME, outcome)
            if status >= 400:  # noqa: PLR2004
                self.span.set_status(Status(StatusCode.ERROR, f"HTTP {status}"))
                self.span.set_attribute(A.ERROR_TYPE, str(status))

    def failed(self, exc: BaseException) -> None:
        if self.status is None:  # no answer at all: timeout, connection
            self.error = type(exc).__name__
            if self.span is not None:
                self.span.set_attribute(A.ERROR_TYPE, self.error)
                self.span.set_status(Status(StatusCode.ERROR, self.error))
