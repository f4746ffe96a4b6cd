"""Traces and metrics: the ONE catalogue of every span, instrument and attribute.

`INSTRUMENTS` and `SPANS` below are data; `docs/observability.md` lists each of
them (a test checks it), and the Grafana dashboard and alert rules refer only to
their Prometheus names (another test checks that).

Where the numbers come from, cheaply:
- job outcomes are plain dict increments in the runtime's settlement observer,
  exported through observable counters (nothing per job touches the SDK but the
  two histograms and the span);
- entry recoveries, losses, schedule skips and config reloads are the counters the
  engine already keeps, read at export time;
- queue depths are a snapshot of the stats document, refreshed by `depth_loop`
  (never a Redis call inside an export callback).

A `Telemetry` is built from provider objects, so tests install in-memory ones
with `install()` instead of the global setters; `setup_telemetry` builds the
process's providers (OTLP/HTTP when an `OTEL_EXPORTER_OTLP_*ENDPOINT` is set, a
Prometheus reader for `/metrics`) and `shutdown` flushes them on exit.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import time
import weakref
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import anyio
from opentelemetry import context as otel_context, metrics, trace
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags
from opentelemetry.trace.span import TraceState

from tgworkers.engine.connection import REDIS_ERRORS
from tgworkers.engine.keys import GROUP

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

    from tgworkers.config import Settings
    from tgworkers.engine.broker import Delivery
    from tgworkers.engine.executor import Settlement
    from tgworkers.engine.retry import Decision

SCOPE: Final = "tgworkers"
SYSTEM: Final = "redis"


class Attr:
    """Every span and metric attribute key we emit."""

    MESSAGING_SYSTEM: Final = "messaging.system"
    OPERATION_NAME: Final = "messaging.operation.name"
    OPERATION_TYPE: Final = "messaging.operation.type"
    DESTINATION: Final = "messaging.destination.name"
    MESSAGE_ID: Final = "messaging.message.id"
    CONSUMER_GROUP: Final = "messaging.consumer.group.name"
    BATCH_COUNT: Final = "messaging.batch.message_count"
    ERROR_TYPE: Final = "error.type"
    JOB_NAME: Final = "tgworkers.job.name"
    JOB_ID: Final = "tgworkers.job.id"
    JOB_ATTEMPT: Final = "tgworkers.job.attempt"
    JOB_DELIVERIES: Final = "tgworkers.job.deliveries"
    QUEUE_STATE: Final = "tgworkers.queue.state"
    REASON: Final = "tgworkers.reason"
    SCHEDULE: Final = "tgworkers.schedule.name"
    OUTCOME: Final = "tgworkers.outcome"
    LEDGER_CODE: Final = "tgworkers.ledger.violation_code"
    PEER: Final = "tgworkers.peer.name"
    STATUS_CLASS: Final = "tgworkers.peer.status_class"
    PEER_OUTCOME: Final = "tgworkers.peer.outcome"
    HTTP_METHOD: Final = "http.request.method"
    HTTP_STATUS: Final = "http.response.status_code"
    URL_PATH: Final = "url.path"


A = Attr
COUNTER: Final = "counter"
HISTOGRAM: Final = "histogram"
OBS_COUNTER: Final = "observable_counter"
OBS_GAUGE: Final = "observable_gauge"
_JOB: Final = (A.DESTINATION, A.JOB_NAME)


@dataclass(frozen=True, slots=True)
class InstrumentSpec:
    """One instrument: OTel name, kind, unit, meaning and attribute keys."""

    name: str
    kind: str
    unit: str
    description: str
    labels: tuple[str, ...]
    buckets: tuple[float, ...] = ()

    @property
    def prometheus_name(self) -> str:
        """The name `/metrics` (and Mimir's default translation) gives it."""
        base = self.name.replace(".", "_") + {"s": "_seconds", "By": "_bytes"}.get(self.unit, "")
        return base + "_total" if self.kind in (COUNTER, OBS_COUNTER) else base

    @property
    def series(self) -> tuple[str, ...]:
        """Every Prometheus series name this instrument produces."""
        n = self.prometheus_name
        if self.kind == HISTOGRAM:
            return (f"{n}_bucket", f"{n}_sum", f"{n}_count")
        return (n,)


FAST: Final = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10)
"""The semantic conventions' messaging duration buckets (seconds)."""
LATENCY: Final = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
                  10, 30, 60, 300)  # fmt: skip
BACKOFF: Final = (0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600)

INSTRUMENTS: Final = (
    InstrumentSpec("messaging.client.sent.messages", COUNTER, "{message}",
                   "Jobs sent to a queue by enqueue (duplicates included)",
                   (A.MESSAGING_SYSTEM, A.OPERATION_NAME, A.DESTINATION, A.JOB_NAME)),
    InstrumentSpec("messaging.client.operation.duration", HISTOGRAM, "s",
                   "Duration of one enqueue call (a whole batch)",
                   (A.MESSAGING_SYSTEM, A.OPERATION_NAME, A.DESTINATION), FAST),
    InstrumentSpec("messaging.client.consumed.messages", OBS_COUNTER, "{message}",
                   "Deliveries settled by this worker, whatever their outcome",
                   (A.MESSAGING_SYSTEM, A.DESTINATION, A.CONSUMER_GROUP, A.JOB_NAME)),
    InstrumentSpec("messaging.process.duration", HISTOGRAM, "s",
                   "Handler duration of one run (error.type set when it failed)",
                   (A.MESSAGING_SYSTEM, A.OPERATION_NAME, *_JOB, A.ERROR_TYPE), FAST),
    InstrumentSpec("tgworkers.jobs.processed", OBS_COUNTER, "{job}",
                   "Runs that ended done", _JOB),
    InstrumentSpec("tgworkers.jobs.failed", OBS_COUNTER, "{job}",
                   "Runs that failed (retried, or dead-lettered by the failure)",
                   (*_JOB, A.ERROR_TYPE)),
    InstrumentSpec("tgworkers.jobs.retried", OBS_COUNTER, "{job}",
                   "Failed runs scheduled for another attempt", (*_JOB, A.ERROR_TYPE)),
    InstrumentSpec("tgworkers.jobs.snoozed", OBS_COUNTER, "{job}",
                   "Runs put back without spending an attempt (Snooze, NotDue)", _JOB),
    InstrumentSpec("tgworkers.jobs.dead_lettered", OBS_COUNTER, "{job}",
                   "Jobs moved to the DLQ, by reason: exhausted, permanent, handler, "
                   "invalid, poison", (*_JOB, A.REASON)),
    InstrumentSpec("tgworkers.job.pickup_latency", HISTOGRAM, "s",
                   "Due time (or entry time) to handler start, first deliveries", _JOB, LATENCY),
    InstrumentSpec("tgworkers.job.retry_backoff", HISTOGRAM, "s",
                   "Delay before the next attempt of a failed run", _JOB, BACKOFF),
    InstrumentSpec("tgworkers.queue.depth", OBS_GAUGE, "{job}",
                   "Jobs per queue and state: ready, inflight, delayed, dlq",
                   (A.DESTINATION, A.QUEUE_STATE)),
    InstrumentSpec("tgworkers.queue.oldest_ready_age", OBS_GAUGE, "s",
                   "Age of the oldest job not yet taken", (A.DESTINATION,)),
    InstrumentSpec("tgworkers.queue.consumers", OBS_GAUGE, "{consumer}",
                   "Live consumers (workers) of the queue", (A.DESTINATION,)),
    InstrumentSpec("tgworkers.entries.reclaimed", OBS_COUNTER, "{entry}",
                   "Entries of dead or stuck workers taken over (recoveries)", (A.DESTINATION,)),
    InstrumentSpec("tgworkers.entries.lost", OBS_COUNTER, "{entry}",
                   "Entries deleted while pending (their job is gone)", (A.DESTINATION,)),
    InstrumentSpec("tgworkers.entries.lease_lost", OBS_COUNTER, "{entry}",
                   "Runs cancelled because another worker took their entry", (A.DESTINATION,)),
    InstrumentSpec("tgworkers.schedule.fires", COUNTER, "{tick}",
                   "Schedule ticks that enqueued their job", (A.SCHEDULE,)),
    InstrumentSpec("tgworkers.schedule.lag", HISTOGRAM, "s",
                   "Tick time to the enqueue of its job", (A.SCHEDULE,), LATENCY),
    InstrumentSpec("tgworkers.schedule.skips", OBS_COUNTER, "{tick}",
                   "Ticks not fired, by reason: overlap, misfire", (A.REASON,)),
    InstrumentSpec("http.client.request.duration", HISTOGRAM, "s",
                   "Peer call duration by peer, status class and outcome",
                   (A.PEER, A.HTTP_METHOD, A.STATUS_CLASS, A.PEER_OUTCOME, A.ERROR_TYPE), FAST),
    InstrumentSpec("tgworkers.peer.auth_rejections", COUNTER, "{response}",
                   "Peer answers 401/403 (our service JWT refused)", (A.PEER, A.HTTP_STATUS)),
    InstrumentSpec("tgworkers.ledger.violations", COUNTER, "{violation}",
                   "Payhub ledger invariant violations found by payhub.ledger.recalc",
                   (A.LEDGER_CODE,)),
    InstrumentSpec("tgworkers.config.reloads", OBS_COUNTER, "{reload}",
                   "Config reload attempts by outcome: applied, rejected, unchanged, "
                   "unavailable", (A.OUTCOME,)),
)  # fmt: skip
BY_NAME: Final = {spec.name: spec for spec in INSTRUMENTS}


@dataclass(frozen=True, slots=True)
class SpanSpec:
    """One span: its name pattern, kind and attribute keys."""

    name: str
    kind: SpanKind
    attributes: tuple[str, ...]


_MESSAGING: Final = (A.MESSAGING_SYSTEM, A.OPERATION_NAME, A.OPERATION_TYPE, A.DESTINATION)
SPANS: Final = (
    SpanSpec("send <queue>", SpanKind.PRODUCER, (*_MESSAGING, A.BATCH_COUNT, A.JOB_NAME)),
    SpanSpec("process <queue>", SpanKind.CONSUMER,
             (*_MESSAGING, A.MESSAGE_ID, A.CONSUMER_GROUP, A.JOB_NAME, A.JOB_ID, A.JOB_ATTEMPT,
              A.JOB_DELIVERIES, A.ERROR_TYPE)),
    SpanSpec("<METHOD> <peer>", SpanKind.CLIENT,
             (A.PEER, A.HTTP_METHOD, A.URL_PATH, A.HTTP_STATUS, A.PEER_OUTCOME, A.ERROR_TYPE)),
)  # fmt: skip


# ---------------------------------------------------------------- per-run context


@dataclass(slots=True)
class JobRun:
    """The run in progress in this task: what logs bind and the span it is in."""

    job_id: str
    job: str
    attempt: int
    queue: str
    span: trace.Span | None
    otel_token: object = None
    var_token: Any = None

    @property
    def trace_id(self) -> str | None:
        if self.span is None:
            return None
        ctx = self.span.get_span_context()
        return format(ctx.trace_id, "032x") if ctx.is_valid else None


current_run: Final[contextvars.ContextVar[JobRun | None]] = contextvars.ContextVar(
    "tgworkers_job_run", default=None
)


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


def _reason(s: Settlement) -> str:
    """The low-cardinality reason a job was dead-lettered."""
    text = s.decision.reason or "" if s.decision is not None else ""
    if s.delivery.extra.get("error_type") is not None:  # the handler raised
        return "exhausted" if text.startswith("attempts exhausted") else "permanent"
    if text.startswith("poison"):
        return "poison"
    return "handler" if s.duration_s > 0 else "invalid"


def status_class(status: int | None) -> str:
    return f"{status // 100}xx" if status else "error"


# ---------------------------------------------------------------- the instruments


class RateBudget:
    """At most `per_s` yeses per second: keeps per-job telemetry cheap under load.

    Below the budget every job is traced and measured; above it (tens of thousands
    of jobs per second) a fixed number per second is, which keeps the histograms'
    shape and the traces representative while the counters stay exact.
    """

    __slots__ = ("_count", "_window", "per_s")

    def __init__(self, per_s: int) -> None:
        self.per_s = per_s
        self._window = 0
        self._count = 0

    def allow(self) -> bool:
        now = int(time.monotonic())
        if now != self._window:
            self._window, self._count = now, 0
        self._count += 1
        return self._count <= self.per_s


HISTOGRAM_SAMPLES_PER_S: Final = int(os.environ.get("TGW_HISTOGRAM_SAMPLES_PER_S", "500"))
"""Per-job histogram records per second and instrument (counters are always exact)."""
PROCESS_SPANS_PER_S: Final = int(os.environ.get("TGW_PROCESS_SPANS_PER_S", "200"))
"""`process` spans per second per worker process; jobs beyond it run untraced."""


class Telemetry:
    """The tracer, the instruments and the engine sources they read."""

    def __init__(
        self,
        tracer_provider: trace.TracerProvider | None = None,
        meter_provider: metrics.MeterProvider | None = None,
    ) -> None:
        self.tracing = tracer_provider is not None
        tp = tracer_provider or trace.NoOpTracerProvider()
        mp = meter_provider or metrics.NoOpMeterProvider()
        self.tracer = tp.get_tracer(SCOPE)
        self.meter = mp.get_meter(SCOPE)
        self.tracer_provider, self.meter_provider = tracer_provider, meter_provider
        self.settled: dict[tuple[str, str, str, str], int] = defaultdict(int)
        """(queue, job, kind, detail) → count: done/retry/snooze/dead/failed."""
        self.runtimes: weakref.WeakSet[Any] = weakref.WeakSet()
        self.schedulers: weakref.WeakSet[Any] = weakref.WeakSet()
        self.reloaders: weakref.WeakSet[Any] = weakref.WeakSet()
        self.depth: list[Any] = []
        self._attrs: dict[tuple[str, ...], dict[str, str]] = {}
        self._static: dict[str, dict[str, Any]] = {}
        self.i: dict[str, Any] = {spec.name: self._create(spec) for spec in INSTRUMENTS}
        self._durations = RateBudget(HISTOGRAM_SAMPLES_PER_S)
        self._pickups = RateBudget(HISTOGRAM_SAMPLES_PER_S)
        self._spans = RateBudget(PROCESS_SPANS_PER_S)

    def _create(self, spec: InstrumentSpec) -> Any:
        m, kw = self.meter, {"unit": spec.unit, "description": spec.description}
        if spec.kind == COUNTER:
            return m.create_counter(spec.name, **kw)
        if spec.kind == HISTOGRAM:
            return m.create_histogram(
                spec.name, explicit_bucket_boundaries_advisory=list(spec.buckets), **kw
            )
        callback = self._callbacks()[spec.name]
        if spec.kind == OBS_COUNTER:
            return m.create_observable_counter(spec.name, callbacks=[callback], **kw)
        return m.create_observable_gauge(spec.name, callbacks=[callback], **kw)

    def _callbacks(self) -> dict[str, Callable[[CallbackOptions], Iterable[Observation]]]:
        def settled(kind: str, detail: str | None) -> Callable[[CallbackOptions], Any]:
            return lambda _: self._observe_settled(kind, detail)

        def runtime(counter: str) -> Callable[[CallbackOptions], Any]:
            return lambda _: self._observe_runtimes(counter)

        return {
            "messaging.client.consumed.messages": lambda _: self._observe_consumed(),
            "tgworkers.jobs.processed": settled("done", None),
            "tgworkers.jobs.failed": settled("failed", A.ERROR_TYPE),
            "tgworkers.jobs.retried": settled("retry", A.ERROR_TYPE),
            "tgworkers.jobs.snoozed": settled("snooze", None),
            "tgworkers.jobs.dead_lettered": settled("dead", A.REASON),
            "tgworkers.queue.depth": lambda _: self._observe_depth(),
            "tgworkers.queue.oldest_ready_age": lambda _: self._observe_queue("oldest"),
            "tgworkers.queue.consumers": lambda _: self._observe_queue("consumers"),
            "tgworkers.entries.reclaimed": runtime("reclaimed"),
            "tgworkers.entries.lost": runtime("lost"),
            "tgworkers.entries.lease_lost": runtime("lease_lost"),
            "tgworkers.schedule.skips": lambda _: self._observe_skips(),
            "tgworkers.config.reloads": lambda _: self._observe_reloads(),
        }

    def attrs(self, *pairs: str) -> dict[str, str]:
        """A cached attribute dict for (key, value, key, value, …)."""
        got = self._attrs.get(pairs)
        if got is None:
            got = self._attrs[pairs] = dict(zip(pairs[::2], pairs[1::2], strict=True))
        return got

    # ------------------------------------------------------------ export callbacks

    def _observe_settled(self, kind: str, detail: str | None) -> Iterator[Observation]:
        for (queue, job, k, extra), n in self.settled.copy().items():
            if k == kind:
                labels = {A.DESTINATION: queue, A.JOB_NAME: job}
                if detail is not None:
                    labels[detail] = extra
                yield Observation(n, labels)

    def _observe_consumed(self) -> Iterator[Observation]:
        totals: dict[tuple[str, str], int] = defaultdict(int)
        for (queue, job, kind, _), n in self.settled.copy().items():
            if kind != "failed":  # failed runs are also counted under retry/dead
                totals[(queue, job)] += n
        for (queue, job), n in totals.items():
            labels = {A.MESSAGING_SYSTEM: SYSTEM, A.DESTINATION: queue,
                      A.CONSUMER_GROUP: GROUP, A.JOB_NAME: job}  # fmt: skip
            yield Observation(n, labels)

    def _observe_runtimes(self, counter: str) -> Iterator[Observation]:
        totals: dict[str, int] = defaultdict(int)
        for rt in list(self.runtimes):
            totals[rt.queue] += rt.counters.get(counter, 0)
        for queue, n in totals.items():
            yield Observation(n, {A.DESTINATION: queue})

    def _observe_depth(self) -> Iterator[Observation]:
        for q in list(self.depth):
            for state in ("ready", "inflight", "delayed", "dlq"):
                yield Observation(getattr(q, state), {A.DESTINATION: q.name, A.QUEUE_STATE: state})

    def _observe_queue(self, what: str) -> Iterator[Observation]:
        for q in list(self.depth):
            value = q.oldest_ready_age_ms / 1000 if what == "oldest" else q.consumers
            yield Observation(value, {A.DESTINATION: q.name})

    def _observe_skips(self) -> Iterator[Observation]:
        scheds = list(self.schedulers)
        for reason, counter in (("overlap", "skipped"), ("misfire", "misfired")):
            yield Observation(sum(s.counters.get(counter, 0) for s in scheds), {A.REASON: reason})

    def _observe_reloads(self) -> Iterator[Observation]:
        totals: dict[str, int] = defaultdict(int)
        for r in list(self.reloaders):
            for outcome, n in r.counters.items():
                totals[outcome] += n
        for outcome, n in totals.items():
            yield Observation(n, {A.OUTCOME: outcome})

    # ------------------------------------------------------------ engine sources

    def track_runtime(self, runtime: Any) -> None:
        """A processor runtime: its settlements and entry counters are exported."""
        self.runtimes.add(runtime)
        runtime.observers.append(self.observe)

    def track_scheduler(self, scheduler: Any) -> None:
        self.schedulers.add(scheduler)
        scheduler.fire_listeners.append(self.schedule_fired)

    def track_reloader(self, reloader: Any) -> None:
        self.reloaders.add(reloader)

    def observe(self, s: Settlement) -> None:
        """Runtime observer, once per settled job: dict increments and two histograms."""
        d = s.delivery
        queue, job = d.pk.queue, d.envelope.name if d.envelope else "unknown"
        kind, dec = s.kind.value, s.decision
        error = d.extra.get("error_type")
        if error is not None:
            self.settled[(queue, job, "failed", error)] += 1
        if kind == "done":
            self.settled[(queue, job, "done", "")] += 1
        elif kind == "dead":
            self.settled[(queue, job, "dead", _reason(s))] += 1
        elif kind == "later" and dec is not None:
            if dec.record is None:
                self.settled[(queue, job, "snooze", "")] += 1
            else:
                self.settled[(queue, job, "retry", error or "Exception")] += 1
                labels = self.attrs(A.DESTINATION, queue, A.JOB_NAME, job)
                self.i["tgworkers.job.retry_backoff"].record(dec.delay_ms / 1000, labels)
        if s.duration_s > 0 and self._durations.allow():
            labels = self._process_labels(queue, job, error)
            self.i["messaging.process.duration"].record(s.duration_s, labels)

    def _process_labels(self, queue: str, job: str, error: str | None) -> dict[str, str]:
        pairs = (A.MESSAGING_SYSTEM, SYSTEM, A.OPERATION_NAME, "process",
                 A.DESTINATION, queue, A.JOB_NAME, job)  # fmt: skip
        return self.attrs(*pairs, A.ERROR_TYPE, error) if error else self.attrs(*pairs)

    def schedule_fired(self, name: str, tick_ms: int) -> None:
        labels = self.attrs(A.SCHEDULE, name)
        self.i["tgworkers.schedule.fires"].add(1, labels)
        lag_s = max(time.time() - tick_ms / 1000, 0.0)
        self.i["tgworkers.schedule.lag"].record(lag_s, labels)

    def ledger_violation(self, code: str) -> None:
        self.i["tgworkers.ledger.violations"].add(1, self.attrs(A.LEDGER_CODE, code))

    def auth_rejected(self, peer: str, status: int) -> None:
        labels = {A.PEER: peer, A.HTTP_STATUS: status}
        self.i["tgworkers.peer.auth_rejections"].add(1, labels)

    async def refresh_depth(self, stats: Any) -> None:
        """Take a new stats snapshot for the queue gauges (one per `depth_loop` tick)."""
        self.depth = list((await stats.snapshot()).queues)

    # ------------------------------------------------------------ spans

    @contextmanager
    def send_span(
        self, queues: Iterable[str], jobs: Mapping[tuple[str, str], int]
    ) -> Iterator[None]:
        """`send <queue>` PRODUCER around an enqueue; its context goes into each job."""
        names = sorted(set(queues))
        dest = names[0] if len(names) == 1 else None
        started = time.perf_counter()
        if self.tracing:
            attrs: dict[str, Any] = {
                A.MESSAGING_SYSTEM: SYSTEM, A.OPERATION_NAME: "send", A.OPERATION_TYPE: "send",
                A.BATCH_COUNT: sum(jobs.values()),
            }  # fmt: skip
            if dest is not None:
                attrs[A.DESTINATION] = dest
            if len({job for _, job in jobs}) == 1:
                attrs[A.JOB_NAME] = next(iter(jobs))[1]
            name = f"send {dest}" if dest else "send"
            with self.tracer.start_as_current_span(name, kind=SpanKind.PRODUCER, attributes=attrs):
                yield
        else:
            yield
        self._sent(dest, jobs, time.perf_counter() - started)

    def _sent(self, dest: str | None, jobs: Mapping[tuple[str, str], int], took_s: float) -> None:
        for (queue, job), n in jobs.items():
            labels = self.attrs(A.MESSAGING_SYSTEM, SYSTEM, A.OPERATION_NAME, "send",
                                A.DESTINATION, queue, A.JOB_NAME, job)  # fmt: skip
            self.i["messaging.client.sent.messages"].add(n, labels)
        pairs = (A.MESSAGING_SYSTEM, SYSTEM, A.OPERATION_NAME, "send")
        labels = self.attrs(*pairs, A.DESTINATION, dest) if dest else self.attrs(*pairs)
        self.i["messaging.client.operation.duration"].record(took_s, labels)

    def start_process(self, queue: str, d: Delivery) -> JobRun:
        """Begin one run: its `process <queue>` span (made current) and log context."""
        env = d.envelope
        assert env is not None  # noqa: S101 - checked by the executor
        if d.deliveries == 1 and self._pickups.allow():
            due_ms = env.due_ms or int(d.entry_id.split(b"-", 1)[0])
            labels = self.attrs(A.DESTINATION, queue, A.JOB_NAME, env.name)
            pickup_s = max(time.time() - due_ms / 1000, 0.0)
            self.i["tgworkers.job.pickup_latency"].record(pickup_s, labels)
        span = self._process_span(queue, d) if self.tracing and self._spans.allow() else None
        run = JobRun(env.id, env.name, env.attempt, queue, span)
        if span is not None:
            run.otel_token = otel_context.attach(trace.set_span_in_context(span))
        run.var_token = current_run.set(run)
        return run

    def _process_span(self, queue: str, d: Delivery) -> trace.Span:
        env = d.envelope
        assert env is not None  # noqa: S101
        static = self._static.get(queue)
        if static is None:
            static = self._static[queue] = {
                A.MESSAGING_SYSTEM: SYSTEM, A.OPERATION_NAME: "process",
                A.OPERATION_TYPE: "process", A.DESTINATION: queue, A.CONSUMER_GROUP: GROUP,
            }  # fmt: skip
        attrs = {**static, A.MESSAGE_ID: d.entry_id.decode(), A.JOB_NAME: env.name,
                 A.JOB_ID: env.id, A.JOB_ATTEMPT: env.attempt,
                 A.JOB_DELIVERIES: d.deliveries}  # fmt: skip
        remote = remote_context(env.traceparent, env.tracestate)
        links, parent = (), None
        if remote is not None:
            links = (Link(remote),)  # type: ignore[assignment]
            if env.attempt == 1 and d.deliveries == 1:  # first delivery: one trace
                parent = trace.set_span_in_context(trace.NonRecordingSpan(remote))
        else:  # no enqueuer context: a root, not a child of whatever is current
            parent = otel_context.Context()
        return self.tracer.start_span(
            f"process {queue}", context=parent, kind=SpanKind.CONSUMER, attributes=attrs,
            links=links,
        )  # fmt: skip

    def end_process(self, run: JobRun, d: Delivery, decision: Decision | None) -> None:
        """End the run begun by `start_process`: status, span end, contexts restored."""
        current_run.reset(run.var_token)
        if run.span is None:
            return
        error = d.extra.get("error_type")
        if error is not None:
            run.span.set_attribute(A.ERROR_TYPE, error)
            message = decision.record.message if decision and decision.record else error
            run.span.set_status(Status(StatusCode.ERROR, message))
        run.span.end()
        otel_context.detach(run.otel_token)  # type: ignore[arg-type]

    @contextmanager
    def peer_call(self, peer: str, method: str, path: str) -> Iterator[PeerCall]:
        """A CLIENT span (current while the request is sent) and the duration metric."""
        call = PeerCall(peer, method)
        started = time.perf_counter()
        span_cm: Any = None
        if self.tracing:
            attrs = {A.PEER: peer, A.HTTP_METHOD: method, A.URL_PATH: path}
            span_cm = self.tracer.start_as_current_span(
                f"{method} {peer}", kind=SpanKind.CLIENT, attributes=attrs,
                record_exception=False, set_status_on_exception=False,
            )  # fmt: skip
            call.span = span_cm.__enter__()
        try:
            yield call
        except BaseException as exc:
            call.failed(exc)
            raise
        finally:
            self._peer_done(call, time.perf_counter() - started)
            if span_cm is not None:
                span_cm.__exit__(None, None, None)

    def _peer_done(self, call: PeerCall, took_s: float) -> None:
        pairs = (A.PEER, call.peer, A.HTTP_METHOD, call.method, A.STATUS_CLASS,
                 status_class(call.status), A.PEER_OUTCOME, call.outcome)  # fmt: skip
        labels = self.attrs(*pairs, A.ERROR_TYPE, call.error) if call.error else self.attrs(*pairs)
        self.i["http.client.request.duration"].record(took_s, labels)


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


# ---------------------------------------------------------------- the process's one


_active: Telemetry = Telemetry()


def active() -> Telemetry:
    """The telemetry engine parts use (a no-op one until set up or installed)."""
    return _active


def install(telemetry: Telemetry) -> Telemetry:
    """Make `telemetry` the active one (tests, benches); returns the previous one."""
    global _active  # the process's one telemetry, swapped as a whole
    previous, _active = _active, telemetry
    return previous


def count_ledger_violation(code: str) -> None:
    """Hook for `payhub.ledger.recalc`'s `violation_hooks`."""
    _active.ledger_violation(code)


async def depth_loop(stats: Any, interval_s: float = 15.0) -> None:
    """Refresh the queue gauges' snapshot every `interval_s` (owned by `run`)."""
    while True:
        with contextlib.suppress(*REDIS_ERRORS):  # gauges keep their last values
            await _active.refresh_depth(stats)
        await anyio.sleep(interval_s)


def _endpoint(environ: Mapping[str, str], signal: str, fallback: str | None) -> str | None:
    """The OTLP/HTTP URL of one signal (`traces`, `metrics`), None when not configured."""
    specific = environ.get(f"OTEL_EXPORTER_OTLP_{signal.upper()}_ENDPOINT", "").strip()
    if specific:
        return specific
    base = (environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip() or fallback or "").rstrip("/")
    return f"{base}/v1/{signal}" if base else None


def setup_telemetry(
    settings: Settings, environ: Mapping[str, str] | None = None, *, prometheus: bool = True
) -> Telemetry:
    """Build the process's providers, set them globally (once) and make them active.

    OTLP/HTTP exporters only when an endpoint is configured; the Prometheus reader
    (for `/metrics`) unless `prometheus` is false; nothing at all when
    `OTEL_SDK_DISABLED` is true.
    """
    from opentelemetry.sdk.metrics import MeterProvider  # noqa: PLC0415 - set-up only
    from opentelemetry.sdk.resources import Resource  # noqa: PLC0415

    env = os.environ if environ is None else environ
    if settings.otel_sdk_disabled:
        return _active
    resource = Resource.create({"service.name": settings.otel_service_name or "tgworkers"})
    traces_url = _endpoint(env, "traces", settings.otel_exporter_otlp_endpoint)
    metrics_url = _endpoint(env, "metrics", settings.otel_exporter_otlp_endpoint)
    tp = _tracer_provider(resource, traces_url) if traces_url else None
    readers = _metric_readers(metrics_url, env, prometheus=prometheus)
    mp = MeterProvider(resource=resource, metric_readers=readers) if readers else None
    if tp is not None and isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        trace.set_tracer_provider(tp)  # for libraries using the global one; set once
    telemetry = Telemetry(tp, mp)
    install(telemetry)
    return telemetry


def _tracer_provider(resource: Any, url: str) -> TracerProvider:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # noqa: PLC0415
        OTLPSpanExporter,
    )
    from opentelemetry.sdk.trace import TracerProvider  # noqa: PLC0415
    from opentelemetry.sdk.trace.export import BatchSpanProcessor  # noqa: PLC0415

    tp = TracerProvider(resource=resource)
    tp.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=url)))
    return tp


def _metric_readers(url: str | None, env: Mapping[str, str], *, prometheus: bool) -> list[Any]:
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader  # noqa: PLC0415

    readers: list[Any] = []
    if url:
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import (  # noqa: PLC0415
            OTLPMetricExporter,
        )

        interval = int(env.get("OTEL_METRIC_EXPORT_INTERVAL", "") or 15_000)
        exporter = OTLPMetricExporter(endpoint=url)
        readers.append(PeriodicExportingMetricReader(exporter, export_interval_millis=interval))
    if prometheus:
        from opentelemetry.exporter.prometheus import PrometheusMetricReader  # noqa: PLC0415

        readers.append(PrometheusMetricReader())
    return readers


def prometheus_text() -> bytes:
    """`/metrics`: everything registered with prometheus_client's default registry."""
    from prometheus_client import REGISTRY, generate_latest  # noqa: PLC0415

    return generate_latest(REGISTRY)


def shutdown(telemetry: Telemetry | None = None) -> None:
    """Flush and stop the providers (SIGTERM path): pending spans and metrics are sent."""
    t = telemetry or _active
    for provider in (t.tracer_provider, t.meter_provider):
        if provider is not None and hasattr(provider, "shutdown"):
            provider.shutdown()
