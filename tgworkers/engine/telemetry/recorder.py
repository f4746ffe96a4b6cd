"""The recorder: per-job spans and histograms, and the process's active telemetry.

What is recorded and under which names is `catalogue.py`; the observable instruments'
sources are `exports.py`; the run's log and trace context is `context.py`; the process's
providers are built by `setup.py`. Per job, only the `process` span (within its budget)
and two histograms touch the SDK; outcomes are dict increments exported later.

A `Telemetry` is built from provider objects (tests `install()` in-memory ones).
"""

from __future__ import annotations

import contextlib
import enum
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Final

import anyio
from opentelemetry import context as otel_context, metrics, trace
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

from tgworkers.engine.telemetry.budget import (
    HISTOGRAM_SAMPLES_PER_S,
    PROCESS_SPANS_PER_S,
    RateBudget,
)
from tgworkers.engine.telemetry.catalogue import (
    COUNTER,
    HISTOGRAM,
    INSTRUMENTS,
    OBS_COUNTER,
    SCOPE,
    SPANS,
    SYSTEM,
    A,
    Attr,
    InstrumentSpec,
    status_class,
)
from tgworkers.engine.telemetry.context import (
    JobRun,
    RunView,
    SettlementView,
    add_job_context,
    carried_trace_headers,
    current_run,
    records_children,
    remote_context,
)
from tgworkers.engine.telemetry.exports import Callback, EngineSources
from tgworkers.engine.telemetry.peer_call import PeerCall
from tgworkers.engine.wire.connection import REDIS_ERRORS
from tgworkers.engine.wire.keys import GROUP

_monotonic: Final = time.monotonic

if TYPE_CHECKING:
    from tgworkers.engine.retry import Decision

__all__ = [
    "INSTRUMENTS",
    "SPANS",
    "Attr",
    "InstrumentSpec",
    "JobRun",
    "PeerCall",
    "RateBudget",
    "Telemetry",
    "active",
    "add_job_context",
    "carried_trace_headers",
    "current_run",
    "depth_loop",
    "install",
    "status_class",
]


def _reason(s: SettlementView) -> str:
    """The low-cardinality reason a job was dead-lettered (carried on the decision)."""
    why = s.decision.dead_reason if s.decision is not None else None
    return why.value if why is not None else "invalid"


# ---------------------------------------------------------------- the instruments


class Telemetry:
    """The tracer, the instruments and the engine sources they read."""

    def __init__(  # the budgets: TGW_*_PER_S, read by the config layer (setup.py)
        self,
        tracer_provider: trace.TracerProvider | None = None,
        meter_provider: metrics.MeterProvider | None = None,
        *,
        histogram_samples_per_s: int = HISTOGRAM_SAMPLES_PER_S,
        process_spans_per_s: int = PROCESS_SPANS_PER_S,
    ) -> None:
        self.tracing = tracer_provider is not None
        tp = tracer_provider or trace.NoOpTracerProvider()
        mp = meter_provider or metrics.NoOpMeterProvider()
        self.tracer = tp.get_tracer(SCOPE)
        self.meter = mp.get_meter(SCOPE)
        self.tracer_provider, self.meter_provider = tracer_provider, meter_provider
        self.sources = EngineSources()
        self.settled = self.sources.settled  # the per-job increments, without an indirection
        self._attrs: dict[tuple[str, ...], dict[str, str]] = {}
        self._static: dict[str, dict[str, Any]] = {}
        callbacks = self.sources.callbacks()
        self.i: dict[str, Any] = {s.name: self._create(s, callbacks) for s in INSTRUMENTS}
        self._durations = RateBudget(histogram_samples_per_s)
        self._pickups = RateBudget(histogram_samples_per_s)
        self._spans = RateBudget(process_spans_per_s)

    def _create(self, spec: InstrumentSpec, callbacks: dict[str, Callback]) -> Any:
        m, kw = self.meter, {"unit": spec.unit, "description": spec.description}
        if spec.kind == COUNTER:
            return m.create_counter(spec.name, **kw)
        if spec.kind == HISTOGRAM:
            return m.create_histogram(
                spec.name, explicit_bucket_boundaries_advisory=list(spec.buckets), **kw
            )
        callback = callbacks[spec.name]
        if spec.kind == OBS_COUNTER:
            return m.create_observable_counter(spec.name, callbacks=[callback], **kw)
        return m.create_observable_gauge(spec.name, callbacks=[callback], **kw)

    def attrs(self, *pairs: str) -> dict[str, str]:
        """A cached attribute dict for (key, value, key, value, …)."""
        got = self._attrs.get(pairs)
        if got is None:
            got = self._attrs[pairs] = dict(zip(pairs[::2], pairs[1::2], strict=True))
        return got

    # ------------------------------------------------------------ engine sources

    def track_runtime(self, runtime: Any) -> None:
        """A processor runtime: its settlements and entry counters are exported."""
        self.sources.runtimes.add(runtime)
        runtime.settler.group_observers.append(self.observe_many)

    def track_scheduler(self, scheduler: Any) -> None:
        self.sources.schedulers.add(scheduler)
        scheduler.fire_listeners.append(self.schedule_fired)

    def track_health(self, health: Any) -> None:
        """A worker's Redis health: its error counts per kind are exported."""
        self.sources.healths.add(health)

    def track_reloader(self, reloader: Any) -> None:
        self.sources.reloaders.add(reloader)

    def observe_many(self, kind: enum.Enum, group: Sequence[SettlementView]) -> None:
        """Runtime observer, once per settled group (one partition, one kind): in bulk.

        A job done without an error (nearly every job) adds to one count per job name
        and offers its duration to the sampled histogram; one budget check per group.
        Every other settle goes through `observe`, as before.
        """
        if kind._value_ != "done":
            for s in group:
                self.observe(s)
            return
        names: list[str] = []
        timed: list[tuple[str, float]] = []
        room = self._durations.left()  # under load, none: no per-job work for the histogram
        for s in group:
            d = s.delivery
            if d.error_type is None and (env := d.envelope) is not None:
                names.append(env.name)
                if room and s.duration_s > 0:
                    timed.append((env.name, s.duration_s))
                    room -= 1
            else:
                self.observe(s)
        if not names:
            return
        queue, settled = group[0].delivery.pk.queue, self.settled
        for job, n in Counter(names).items():
            settled[(queue, job, "done", "")] += n
        if timed:
            self._durations.take(len(timed))
            self._record_durations(queue, timed)

    def _record_durations(self, queue: str, timed: list[tuple[str, float]]) -> None:
        duration, labels, last = self.i["messaging.process.duration"], {}, ""
        for job, took_s in timed:
            if job != last:
                labels, last = self._process_labels(queue, job, None), job
            duration.record(took_s, labels)

    def observe(self, s: SettlementView) -> None:
        """One settled job: dict increments and two histograms (`observe_many`'s slow path)."""
        d = s.delivery
        queue, job = d.pk.queue, d.envelope.name if d.envelope else "unknown"
        # `_value_`, the member's own attribute: `.value` is a descriptor call per job
        kind, dec = s.kind._value_, s.decision
        error = d.error_type
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

    def rate_permit(self, scope: str, name: str, outcome: str) -> None:
        labels = self.attrs(A.RATE_SCOPE, scope, A.RATE_NAME, name, A.OUTCOME, outcome)
        self.i["tgworkers.rate_limit.permits"].add(1, labels)

    def auth_rejected(self, peer: str, status: int) -> None:
        labels = {A.PEER: peer, A.HTTP_STATUS: status}
        self.i["tgworkers.peer.auth_rejections"].add(1, labels)

    async def refresh_depth(self, stats: Any) -> None:
        """Take a new stats snapshot for the queue gauges (one per `depth_loop` tick)."""
        self.sources.depth = list((await stats.snapshot()).queues)

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

    def start_process(self, queue: str, d: RunView) -> JobRun:
        """Begin one run: its `process <queue>` span (made current) and log context."""
        env = d.envelope
        assert env is not None  # noqa: S101 - checked by the executor
        if self.tracing and _monotonic() >= self._spans.closed_until and self._spans.allow():
            span = self._process_span(queue, d)
            run = JobRun(env, queue, span)
            run.otel_token = otel_context.attach(trace.set_span_in_context(span))
        else:  # unrecorded: the carried context is sent with a fresh span id (trace_headers)
            run = JobRun(env, queue, None)
        pickups = self._pickups  # spent this second (under load, nearly always): no call
        if d.deliveries == 1 and _monotonic() >= pickups.closed_until and pickups.allow():
            due_ms = env.due_ms or int(d.entry_id.split(b"-", 1)[0])
            run.pickup_s = max(time.time() - due_ms / 1000, 0.0)  # recorded by `picked_up`
        run.var_token = current_run.set(run)
        return run

    def picked_up(self, run: JobRun) -> None:
        """Record the run's pickup latency (measured as it began) after its handler's first step.

        The histogram's record (~7 µs, several times that with the cold caches of a worker
        woken for one job) was paid before the handler's first line, by every job's pickup
        at a low rate: profiled at 500 jobs/s, 30-40 µs of a 0.4 ms pickup.
        """
        if run.pickup_s is not None:
            labels = self.attrs(A.DESTINATION, run.queue, A.JOB_NAME, run.env.name)
            self.i["tgworkers.job.pickup_latency"].record(run.pickup_s, labels)

    def _process_span(self, queue: str, d: RunView) -> trace.Span:
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

    def end_process(self, run: JobRun, d: RunView, decision: Decision | None) -> None:
        """End the run begun by `start_process`: status, span end, contexts restored."""
        current_run.reset(run.var_token)
        if run.span is None:
            return
        error = d.error_type
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
        if self.tracing and records_children(current_run.get()):
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
