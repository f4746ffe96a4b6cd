"""The launcher: every part of one process, built from settings plus injected parts, then run.

`run`, `dev` and the testing harness all start a process here, and nothing else in
`tgworkers/` assembles one (docs/architecture.md, "Process assembly", gives the
`grep` that shows it). Like Sidekiq's Launcher, it has one verb per phase: `launch`
builds, `Launcher.serve` runs in the caller's event loop, `Launcher.run` owns one.

`launch` builds, in order:

1. with hot reload, the first config document, before anything reads the settings
   (`first_document.py`), so a limit it sets holds from the first job;
2. telemetry: the providers the settings ask for (OTLP where configured, the
   Prometheus reader for `/metrics`) or the one the caller injects (a test's
   in-memory one), and the ledger-violation hook; before the worker, whose parts
   register with it;
3. the jobs' resources and the peer clients (from the settings, or injected fakes);
4. the Redis connections and the `Worker`, which builds the engine's own parts
   reading the settings through one `Live`, on the injected clock;
5. the reloader, sharing that `Live` and seeded with the first document;
6. the HTTP services *from the worker's own parts* and the server on `PORT` (a bad
   `ADMIN_TRUSTED_JWKS` stops start-up here, exit 2).

`serve` then runs the worker (with its signal receiver, and a stop received during
start-up handed over), the reloader, the depth gauges, the server with its stats
sampler and info publisher, and the caller's own tasks beside them (`dev`'s sample
work and view); it closes the peer clients on every exit.
"""

from __future__ import annotations

import functools
import gc
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import anyio
import structlog

from tgworkers.bootstrap.first_document import FirstDocument, wait_for_first_document
from tgworkers.bootstrap.http_upkeep import publish_self, sample_stats
from tgworkers.bootstrap.layer_settings import http_settings, telemetry_settings
from tgworkers.bootstrap.processors import job_resources
from tgworkers.bootstrap.reload import Reloader, Select, build_reloader, source_for
from tgworkers.bootstrap.signals import EarlySignals
from tgworkers.config import Settings
from tgworkers.engine.ops import EngineServices
from tgworkers.engine.registry import Processor, Registry
from tgworkers.engine.runtime.executor import Clock
from tgworkers.engine.runtime.worker import Worker, open_connections
from tgworkers.engine.telemetry import recorder
from tgworkers.engine.telemetry.recorder import Telemetry, count_ledger_violation
from tgworkers.engine.telemetry.setup import setup_telemetry, shutdown_telemetry
from tgworkers.errors import ConfigError
from tgworkers.http.health import HealthProbe
from tgworkers.http.server import EmbeddedServer, embedded_server
from tgworkers.jobs.payhub.ledger_recalc import violation_hooks
from tgworkers.peers import Peers

__all__ = ["Injected", "Launcher", "Reload", "launch"]

log = structlog.get_logger("tgworkers.run")

Task = Callable[[], Coroutine[Any, Any, None]]
"""A caller's task run beside the worker until it stops (`dev`'s sample work)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Injected:
    """Parts a caller hands in instead of the ones the settings would build."""

    clock: Clock = time.time
    """Handlers' `ctx.now_ms()` and the schedules' time (the harness's fake clock)."""
    telemetry: Telemetry | None = None
    """None: providers built from the settings and flushed at exit; else this one,
    left to its owner (a test's in-memory providers)."""
    peers: Peers | None = None
    """None: peer clients built from the settings when a processor calls peers; either
    way the launcher gives them the shared rate gate and closes them on exit."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Reload:
    """What hot reload needs besides the settings: `run` passes it, `dev` and tests do not."""

    select: Select
    """Which processors a document's settings select (`select_processors`)."""
    base_env: Mapping[str, str]
    """The start-up environment a document is merged over."""


@dataclass(slots=True)
class Launcher:
    """Every part of one process, each built once by `launch`."""

    settings: Settings
    worker: Worker
    services: EngineServices
    telemetry: Telemetry
    owns_telemetry: bool
    peers: Peers | None = None
    reloader: Reloader | None = None
    server: EmbeddedServer | None = None
    early: EarlySignals | None = None
    handle_signals: bool = True

    async def serve(self, *beside: Task) -> None:
        """Run every part until the worker stops (a signal or `request_stop`)."""
        try:
            async with anyio.create_task_group() as tg:
                if self.early is not None:
                    tg.start_soon(_stop_if_signalled_early, self.worker, self.early)
                if self.reloader is not None:
                    tg.start_soon(self.reloader.run)
                tg.start_soon(recorder.depth_loop, self.services.stats)  # the gauges' snapshot
                for task in beside:
                    tg.start_soon(task)
                await self._run_worker()
                tg.cancel_scope.cancel()
        finally:
            if self.peers is not None:
                await self.peers.aclose()  # connection pools closed on every exit

    async def _run_worker(self) -> None:
        """The worker and, when there is a server, it and the stats sampler beside it.

        The server stops only after the worker has: `/healthz` and `/readyz` keep
        answering during the drain.
        """
        server, port = self.server, self.settings.port
        if server is None:
            await self.worker.run(handle_signals=self.handle_signals)
            return
        async with anyio.create_task_group() as tg:
            tg.start_soon(server.serve)
            log.info("http.started", port=port)
            async with anyio.create_task_group() as sampler:
                sampler.start_soon(sample_stats, self.services, self.worker.health)
                sampler.start_soon(publish_self, self.worker)
                await self.worker.run(handle_signals=self.handle_signals)
                sampler.cancel_scope.cancel()
            server.should_exit = True
        log.info("http.stopped", port=port)

    @asynccontextmanager
    async def running(self, start_timeout_s: float = 10.0) -> AsyncIterator[Worker]:
        """Serve in the caller's event loop (a test's) while the block runs, then stop."""
        async with anyio.create_task_group() as tg:
            tg.start_soon(self.serve)
            with anyio.fail_after(start_timeout_s):
                await self.worker.started.wait()
            try:
                yield self.worker
            finally:
                self.worker.request_stop()

    def run(self, *beside: Task) -> None:
        """Own an event loop (uvloop when installed) until the worker stops; flush telemetry.

        A `ConfigError` found while starting (a partition count that disagrees)
        leaves as itself, not inside a task group's exception group (exit 2).
        """
        backend_options: dict[str, Any] = {}
        try:
            import uvloop  # noqa: F401, PLC0415 - optional speed-up

            backend_options["use_uvloop"] = True
        except ImportError:
            pass
        freeze = functools.partial(_freeze_start_up_heap, self.worker)
        serve = functools.partial(self.serve, *beside, freeze)
        try:
            anyio.run(serve, backend="asyncio", backend_options=backend_options)
        except BaseExceptionGroup as group:
            found: BaseException | None = group.subgroup(ConfigError)
            while isinstance(found, BaseExceptionGroup):
                found = found.exceptions[0]
            if found is None:
                raise
            raise found from None
        finally:
            if self.owns_telemetry:
                shutdown_telemetry(self.telemetry)  # pending spans and metrics are sent


def launch(  # noqa: PLR0913 - the one place that wires a process
    settings: Settings,
    registry: Registry,
    processors: Sequence[Processor],
    *,
    consumer: str,
    injected: Injected | None = None,
    reload: Reload | None = None,
    early: EarlySignals | None = None,
    serve_http: bool = True,
    handle_signals: bool = True,
) -> Launcher:
    """Build every part of one process; `reload` enables hot reload, `serve_http` the server.

    The HTTP server runs when `serve_http` and `PORT` is set; `handle_signals`
    gives the worker SIGTERM/SIGINT (not in a test's event loop); `early` holds a
    stop signal received before the worker listens (it also ends the wait for the
    first document).
    """
    injected = injected or Injected()
    processors = tuple(processors)
    first = None
    if reload is not None:
        first = first_document(settings, processors, registry, reload, early)
        settings, processors = first.settings, first.processors
    telemetry, owns_telemetry = _telemetry(settings, injected)
    resources, peers = job_resources(registry, settings, injected.peers)
    worker = Worker(
        settings=settings, registry=registry, processors=processors, consumer=consumer,
        resources=resources, connections=open_connections(settings, registry),
        clock=injected.clock,
    )  # fmt: skip
    if peers is not None:
        peers.use_rate_gate(worker.rates.peer_gate)  # RATE_<PEER>_PER_S across replicas
    reloader = None
    if reload is not None:
        reloader = build_reloader(worker, registry, reload.select, reload.base_env,
                                  settings=settings)  # fmt: skip
    if reloader is not None:
        if first is not None:
            first.seed(reloader)
        telemetry.track_reloader(reloader)
    services = EngineServices.of_worker(worker)
    server = None
    if serve_http and settings.port is not None:
        probe = HealthProbe(worker, reloader)
        server = embedded_server(services, probe, http_settings(settings), settings.port)
    return Launcher(settings, worker, services, telemetry, owns_telemetry, peers, reloader,
                    server, early, handle_signals)  # fmt: skip


def _telemetry(settings: Settings, injected: Injected) -> tuple[Telemetry, bool]:
    """(the active telemetry, whether this process built it) and the ledger hook."""
    if injected.telemetry is not None:
        recorder.install(injected.telemetry)
        telemetry, owned = injected.telemetry, False
    else:
        telemetry, owned = setup_telemetry(telemetry_settings(settings)), True
    if count_ledger_violation not in violation_hooks:
        violation_hooks.append(count_ledger_violation)  # payhub.ledger.recalc's violations
    return telemetry, owned


def first_document(
    settings: Settings,
    processors: tuple[Processor, ...],
    registry: Registry,
    reload: Reload,
    early: EarlySignals | None,
) -> FirstDocument:
    """The settings and processors to start with: the first config document's, if any.

    Read before the worker is built, so its limits hold from the first job.
    """
    source = source_for(settings)
    if source is None:
        return FirstDocument(settings, processors)
    return anyio.run(
        functools.partial(
            wait_for_first_document,
            source,
            env_settings=settings,
            env_processors=processors,
            base_env=reload.base_env,
            registry=registry,
            select=reload.select,
            stopping=lambda: early is not None and early.received is not None,
        )
    )


async def _freeze_start_up_heap(worker: Worker) -> None:
    """Once the worker has started: what start-up built leaves the cyclic GC's view.

    Modules, classes, settings, the telemetry SDK: ~90,000 objects the collector walked
    at every full collection, which stalled a worker for ~34 ms (measured in a 200,000
    job drain), a pickup's tail. Frozen (`gc.freeze`), a full collection walks only
    what came after (~0.5 ms). Only in a process `run` owns: a test's process, which
    starts many workers, keeps collecting everything.
    """
    await worker.started.wait()
    gc.freeze()


async def _stop_if_signalled_early(worker: Worker, early: EarlySignals) -> None:
    """Hand a stop signal received during start-up to the worker once it runs."""
    await worker.started.wait()
    if early.received is not None:
        log.info("worker.stopping", signal=early.received.name, during="start-up")
        worker.request_stop()
