"""The run in progress in this task: its log fields and its trace context.

One ContextVar per run (`current_run`) feeds the log processor `add_job_context`;
`remote_context` reads the enqueuer's W3C context from an envelope and
`carried_span` continues it when the run records no span of its own.
"""

from __future__ import annotations

import contextvars
import enum
import random
from collections.abc import MutableMapping
from typing import Any, Final, Protocol

from opentelemetry import trace
from opentelemetry.trace import SpanContext, TraceFlags
from opentelemetry.trace.span import TraceState

from tgworkers.engine.retry import Decision
from tgworkers.engine.wire.envelope import Envelope
from tgworkers.engine.wire.keys import PartitionKeys


class JobRun:
    """The run in progress in this task: what logs bind and the span it is in.

    Holds the run's envelope and reads the identity from it when a log line or a peer
    request asks (most runs ask nothing): one object and three fields per run.
    """

    __slots__ = ("_headers", "env", "otel_token", "pickup_s", "queue", "span", "var_token")

    def __init__(self, env: Envelope, queue: str, span: trace.Span | None) -> None:
        self.env, self.queue = env, queue
        self.span = span
        """The recorded `process` span; None when the run records none (no exporter, budget)."""
        self.otel_token: object = None
        self.var_token: Any = None
        self.pickup_s: float | None = None
        """From due to this run's start, when this run samples the pickup histogram."""
        self._headers: dict[str, str] | None = None

    @property
    def job_id(self) -> str:
        return self.env.id

    @property
    def job(self) -> str:
        return self.env.name

    @property
    def attempt(self) -> int:
        return self.env.attempt

    @property
    def carried(self) -> tuple[str | None, str | None]:
        """The enqueuer's `traceparent` and `tracestate`, for a run that records no span."""
        return self.env.traceparent, self.env.tracestate

    @property
    def trace_id(self) -> str | None:
        if self.span is None:
            return self.trace_headers()["traceparent"][3:35]
        ctx = self.span.get_span_context()
        return format(ctx.trace_id, "032x") if ctx.is_valid else None

    def trace_headers(self) -> dict[str, str]:
        """W3C headers of this unrecorded run's non-recording span (`carried_span`).

        Built on first use (a peer call, a log line, an enqueue), once per run, so a
        run that calls no peer pays nothing for it.
        """
        if self._headers is None:
            ctx = carried_span(*self.carried).get_span_context()
            flags = int(ctx.trace_flags)
            headers = {"traceparent": f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{flags:02x}"}
            if ctx.trace_state:
                headers["tracestate"] = ctx.trace_state.to_header()
            self._headers = headers
        return self._headers


def carried_trace_headers() -> dict[str, str]:
    """The running job's trace headers when it records no span, else none.

    Peer requests and enqueues fall back to these when the current OpenTelemetry
    context has no span to inject, so every request of a job carries its trace.
    """
    run = current_run.get()
    if run is None or run.span is not None:
        return {}
    return run.trace_headers()


current_run: Final[contextvars.ContextVar[JobRun | None]] = contextvars.ContextVar(
    "tgworkers_job_run", default=None
)


def current_request_id() -> str | None:
    """`job_id:attempt` of the run in progress (peers send it as X-Request-Id), else None.

    Read from the run's one ContextVar when a request is sent, instead of a second
    ContextVar set and reset around every run (a twentieth of a no-op job's CPU with
    the context it was built with, profiled).
    """
    run = current_run.get()
    return None if run is None else f"{run.job_id}:{run.attempt}"


def add_job_context(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Log processor: the run's job id, name, attempt, queue and trace id.

    One ContextVar set per run instead of binding five on every run: the fields
    are only built when something is actually logged.
    """
    run = current_run.get()
    if run is not None:
        event.setdefault("job_id", run.job_id)
        event.setdefault("job", run.job)
        event.setdefault("attempt", run.attempt)
        event.setdefault("queue", run.queue)
        if (trace_id := run.trace_id) is not None:
            event.setdefault("trace_id", trace_id)
    return event


def remote_context(traceparent: str | None, tracestate: str | None) -> SpanContext | None:
    """The enqueuer's span context from a W3C `traceparent` (None when absent or bad)."""
    if not traceparent or len(traceparent) != 55:  # noqa: PLR2004 - 00-<32>-<16>-<2>
        return None
    try:
        version, trace_id, span_id, flags = traceparent.split("-")
        ctx = SpanContext(
            int(trace_id, 16), int(span_id, 16), is_remote=True,
            trace_flags=TraceFlags(int(flags, 16)),
            trace_state=TraceState.from_header([tracestate]) if tracestate else None,
        )  # fmt: skip
    except ValueError:
        return None
    return ctx if ctx.is_valid and version == "00" else None


def carried_span(traceparent: str | None, tracestate: str | None) -> trace.Span:
    """A non-recording span for a run that records none (no exporter, or over budget).

    It carries the enqueuer's trace id, flags and state with a fresh span id, so
    every peer request still sends a valid `traceparent` that joins the
    enqueuer's trace (contracts/peers.md). A job enqueued without a context gets
    a fresh, unsampled trace id of its own.
    """
    remote = remote_context(traceparent, tracestate)
    span_id = random.getrandbits(64) or 1  # ids, not secrets (as the SDK)
    if remote is None:
        trace_id = random.getrandbits(128) or 1
        return trace.NonRecordingSpan(SpanContext(trace_id, span_id, is_remote=False))
    ctx = SpanContext(
        remote.trace_id,
        span_id,
        is_remote=False,
        trace_flags=remote.trace_flags,
        trace_state=remote.trace_state,
    )
    return trace.NonRecordingSpan(ctx)


def records_children(run: JobRun | None) -> bool:
    """A peer call is recorded inside a recorded run, or outside any run.

    A run over the span budget records nothing: its peer calls send its carried
    context (`carried_trace_headers`) and record no CLIENT span, so the budget
    bounds CLIENT spans too.
    """
    return run is None or run.span is not None


class RunView(Protocol):
    """What the recorder reads of one delivery (the broker's `Delivery` fits it).

    A protocol, not an import, so telemetry stays below the broker and executor.
    """

    @property
    def pk(self) -> PartitionKeys: ...

    @property
    def entry_id(self) -> bytes: ...

    @property
    def deliveries(self) -> int: ...

    @property
    def envelope(self) -> Envelope | None: ...

    @property
    def error_type(self) -> str | None: ...


class SettlementView(Protocol):
    """What the recorder reads of one settlement (the executor's `Settlement` fits it)."""

    @property
    def kind(self) -> enum.Enum: ...

    @property
    def delivery(self) -> RunView: ...

    @property
    def decision(self) -> Decision | None: ...

    @property
    def duration_s(self) -> float: ...
