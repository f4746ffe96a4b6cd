"""The ONE catalogue of every span, instrument and attribute tgworkers emits.

`INSTRUMENTS` and `SPANS` are data; `docs/observability.md` lists each of them (a
test checks it), and the Grafana dashboard and alert rules refer only to their
Prometheus names (another test checks that). Nothing here touches the SDK.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from opentelemetry.trace import SpanKind

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
    RATE_SCOPE: Final = "tgworkers.rate_limit.scope"
    RATE_NAME: Final = "tgworkers.rate_limit.name"


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
RUN: Final = (*FAST, 30, 60, 120, 300, 600)
"""Handler durations: FAST, then up to 10 min, so that every run-duration SLO threshold
(helm/tgworkers/alerts/tgworkers-rules.yaml) and common job timeouts are boundaries."""
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
                   (A.MESSAGING_SYSTEM, A.OPERATION_NAME, *_JOB, A.ERROR_TYPE), RUN),
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
    InstrumentSpec("tgworkers.redis.errors", OBS_COUNTER, "{error}",
                   "Redis errors met by the engine's loops, by kind (class and Redis code, "
                   "e.g. OutOfMemoryError, ResponseError:NOGROUP); each loop backed off",
                   (A.ERROR_TYPE,)),
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
    InstrumentSpec("tgworkers.rate_limit.permits", COUNTER, "{permit}",
                   "Permits asked of a shared rate limit (scope queue or peer, and its name), "
                   "by outcome: allowed (at once), waited (booked ahead, the caller slept), "
                   "refused (the job went back to the delayed set)",
                   (A.RATE_SCOPE, A.RATE_NAME, A.OUTCOME)),
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


def status_class(status: int | None) -> str:
    return f"{status // 100}xx" if status else "error"
