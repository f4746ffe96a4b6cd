"""Observable instruments: the counters the engine already keeps, read at export time.

Job outcomes are plain dict increments (`settled`) made by the runtime's settlement
observer; entry recoveries, losses, schedule skips and config reloads are the
counters runtimes, schedulers and reloaders keep; queue depths are a snapshot of
the stats document refreshed by `depth_loop`. Nothing here runs per job, and no
export callback ever calls Redis.
"""

from __future__ import annotations

import weakref
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from opentelemetry.metrics import CallbackOptions, Observation

from tgworkers.engine.telemetry.catalogue import SYSTEM, A
from tgworkers.engine.wire.keys import GROUP

Callback = Callable[[CallbackOptions], Iterable[Observation]]


class EngineSources:
    """What the observable instruments read; filled by the engine as it runs."""

    def __init__(self) -> None:
        self.settled: dict[tuple[str, str, str, str], int] = defaultdict(int)
        """(queue, job, kind, detail) → count: done/retry/snooze/dead/failed."""
        self.runtimes: weakref.WeakSet[Any] = weakref.WeakSet()
        self.schedulers: weakref.WeakSet[Any] = weakref.WeakSet()
        self.reloaders: weakref.WeakSet[Any] = weakref.WeakSet()
        self.healths: weakref.WeakSet[Any] = weakref.WeakSet()
        self.depth: list[Any] = []
        """The last stats snapshot's queues (`depth_loop`)."""

    def callbacks(self) -> dict[str, Callback]:
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
            "tgworkers.redis.errors": lambda _: self._observe_redis_errors(),
        }

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
            totals[rt.queue] += getattr(rt.counters, counter, 0)  # runtime/counters.py
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

    def _observe_redis_errors(self) -> Iterator[Observation]:
        totals: dict[str, int] = defaultdict(int)
        for health in list(self.healths):
            for kind, n in health.errors.items():
                totals[kind] += n
        for kind, n in totals.items():
            yield Observation(n, {A.ERROR_TYPE: kind})

    def _observe_reloads(self) -> Iterator[Observation]:
        totals: dict[str, int] = defaultdict(int)
        for r in list(self.reloaders):
            for outcome, n in r.counters.items():
                totals[outcome] += n
        for outcome, n in totals.items():
            yield Observation(n, {A.OUTCOME: outcome})
