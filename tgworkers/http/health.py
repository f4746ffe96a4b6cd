"""Liveness and readiness of a worker process, for `/healthz` and `/readyz`.

Liveness asks whether the worker's loops are alive and making progress, not
only whether the event loop answers: every runtime stamps `last_progress` when
its read loop completes a read (at least once per block time, even when idle)
or a job finishes. A runtime is stalled when that stamp is older than
`max(60 s, 2 x its longest job timeout)` while it is neither paused, stopping,
nor riding out a Redis outage (an outage is a readiness matter, and restarting
the pod would not cure it).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, Final, Protocol

import anyio
from starlette.requests import Request
from starlette.responses import JSONResponse

from tgworkers.engine.registry import Processor

STALE_MIN_S: Final = 60.0
_UNREACHABLE: Final = frozenset({"ConnectionError", "TimeoutError", "OSError",
                                 "ConnectionRefusedError", "ConnectionResetError"})  # fmt: skip
"""Error kinds that mean Redis cannot be reached (any other: it answers, but refuses)."""


class ProbedRuntime(Protocol):
    """What liveness reads of one processor's runtime (`runtime.processor.ProcessorRuntime`)."""

    @property
    def queue(self) -> str: ...
    @property
    def processor(self) -> Processor: ...
    @property
    def last_progress(self) -> float: ...
    @property
    def paused(self) -> bool: ...
    @property
    def stopping(self) -> bool: ...


class ProbedHealth(Protocol):
    """What readiness reads of the worker's Redis health (`wire.connection.RedisHealth`)."""

    @property
    def up(self) -> bool: ...
    @property
    def failing(self) -> dict[str, str]: ...


class ProbedWorker(Protocol):
    """What the probes read of the worker in this process (`runtime.worker.Worker`).

    Only in-memory state: the probes never touch Redis. A protocol, so the HTTP layer
    imports nothing of the runtime.
    """

    @property
    def runtimes(self) -> Sequence[ProbedRuntime]: ...
    @property
    def started(self) -> anyio.Event: ...
    @property
    def health(self) -> ProbedHealth: ...


def stale_after_s(rt: ProbedRuntime) -> float:
    longest = max((jt.timeout_s for jt in rt.processor.job_types), default=0.0)
    return max(STALE_MIN_S, 2 * longest)


class ConfigState(Protocol):
    """What readiness needs of the config reloader (`bootstrap.reload.Reloader`)."""

    @property
    def awaiting_first(self) -> bool: ...

    @property
    def description(self) -> str: ...


class HealthProbe:
    """Reads a worker's state; never touches Redis (a probe must not add load)."""

    def __init__(self, worker: ProbedWorker, reloader: ConfigState | None = None) -> None:
        self.worker = worker
        self.reloader = reloader

    def liveness(self) -> tuple[bool, dict[str, Any]]:
        now = time.monotonic()
        ages = {rt.queue: round(now - rt.last_progress, 3) for rt in self.worker.runtimes}
        stalled = [
            rt.queue
            for rt in self.worker.runtimes
            if not (rt.paused or rt.stopping) and now - rt.last_progress > stale_after_s(rt)
        ]
        if not self.worker.started.is_set() or not self.worker.health.up:
            stalled = []
        status = "stalled" if stalled else "ok"
        return not stalled, {"status": status, "stalled": stalled, "progressAgeS": ages}

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        if not self.worker.started.is_set():
            return False, {"status": "starting"}
        health = self.worker.health
        if not health.up:
            failing = health.failing
            if all(kind in _UNREACHABLE for kind in failing.values()):
                return False, {"status": "redis_unreachable"}
            return False, {"status": "redis_failing", "failing": failing}
        if self.reloader is not None and self.reloader.awaiting_first:
            return False, {"status": "config_pending", "source": self.reloader.description}
        return True, {"status": "ready"}


async def healthz(request: Request) -> JSONResponse:
    probe: HealthProbe = request.app.state.probe
    ok, body = probe.liveness()
    return JSONResponse(body, status_code=200 if ok else 503)


async def readyz(request: Request) -> JSONResponse:
    probe: HealthProbe = request.app.state.probe
    ok, body = probe.readiness()
    return JSONResponse(body, status_code=200 if ok else 503)
