"""One worker process, wired in one place: each part built once and handed down.

`run` and `dev` both call `build_process` and `serve`. What is built here, in
order (docs/architecture.md):

1. the first config document, when `CONFIG_URL`/`CONFIG_FILE` is set, before
   anything reads the settings (`first_document.py`);
2. the jobs' resources and the peer clients (`processors.job_resources`);
3. the `Worker`, which opens the Redis connections and builds the engine parts
   it owns (Layout, Client, Scripts, Control, DeadLetters, the runtimes), all
   reading the settings through one `Live` reference;
4. the reloader, sharing that reference;
5. the HTTP services *from the worker's own parts* (no second Client, Layout or
   StatsReader), and the HTTP server on `PORT` (a bad `ADMIN_TRUSTED_JWKS` stops
   start-up here, exit 2).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass

import anyio
import structlog

from tgworkers.bootstrap.first_document import FirstDocument, wait_for_first_document
from tgworkers.bootstrap.processors import job_resources
from tgworkers.bootstrap.reload import Reloader, Select, build_reloader, source_for
from tgworkers.bootstrap.signals import EarlySignals
from tgworkers.config import Settings
from tgworkers.engine.ops import EngineServices
from tgworkers.engine.registry import Processor, Registry
from tgworkers.engine.runtime.worker import Worker, open_connections
from tgworkers.engine.telemetry import recorder as telemetry
from tgworkers.engine.telemetry.setup import TelemetrySettings
from tgworkers.http.health import HealthProbe
from tgworkers.http.server import EmbeddedServer, embedded_server, run_with_server
from tgworkers.http.settings import HttpSettings
from tgworkers.peers import Peers

log = structlog.get_logger("tgworkers.run")


def telemetry_settings(settings: Settings) -> TelemetrySettings:
    """The telemetry layer's settings, mapped from the parsed environment."""
    return TelemetrySettings(
        sdk_disabled=settings.otel_sdk_disabled,
        otlp_endpoint=settings.otel_exporter_otlp_endpoint,
        service_name=settings.otel_service_name,
    )


def http_settings(settings: Settings) -> HttpSettings:
    """The HTTP server's settings, mapped from the parsed environment."""
    return HttpSettings(
        port=settings.port,
        service_name=settings.service_name,
        admin_token=settings.admin_token,
        admin_readonly_token=settings.admin_readonly_token,
        admin_trusted_jwks=settings.admin_trusted_jwks,
        admin_jwt_issuers=settings.admin_jwt_issuers,
        admin_jwt_max_lifetime_s=settings.admin_jwt_max_lifetime_s,
        metrics_token=settings.metrics_token,
        console_session_secret=settings.console_session_secret,
        console_session_ttl_s=settings.console_session_ttl_s,
        trace_url_template=settings.trace_url_template,
    )


@dataclass(slots=True)
class ProcessParts:
    """Every part of one worker process, each built once by `build_process`."""

    settings: Settings
    worker: Worker
    services: EngineServices
    peers: Peers | None = None
    reloader: Reloader | None = None
    server: EmbeddedServer | None = None
    early: EarlySignals | None = None


def first_document(
    settings: Settings,
    processors: tuple[Processor, ...],
    base_env: Mapping[str, str],
    registry: Registry,
    select: Select,
    early: EarlySignals,
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
            base_env=base_env,
            registry=registry,
            select=select,
            stopping=lambda: early.received is not None,
        )
    )


def build_process(  # noqa: PLR0913 - the one place that wires a process
    settings: Settings,
    registry: Registry,
    processors: tuple[Processor, ...],
    *,
    consumer: str,
    select: Select | None = None,
    base_env: Mapping[str, str] | None = None,
    first: FirstDocument | None = None,
    early: EarlySignals | None = None,
) -> ProcessParts:
    """Build the worker and everything around it; `select` enables hot reload."""
    resources, peers = job_resources(registry, settings)
    worker = Worker(
        settings=settings,
        registry=registry,
        processors=processors,
        consumer=consumer,
        resources=resources,
        connections=open_connections(settings, registry),
    )
    if peers is not None:
        peers.use_rate_gate(worker.rates.peer_gate)  # RATE_<PEER>_PER_S across replicas
    reloader = None
    if select is not None:
        reloader = build_reloader(worker, registry, select, base_env, settings=settings)
    if reloader is not None:
        if first is not None:
            first.seed(reloader)
        telemetry.active().track_reloader(reloader)
    services = EngineServices.of_worker(worker)
    server = None
    if settings.port is not None:
        probe = HealthProbe(worker, reloader)
        server = embedded_server(services, probe, http_settings(settings), settings.port)
    return ProcessParts(settings, worker, services, peers, reloader, server, early)


async def _stop_if_signalled_early(worker: Worker, early: EarlySignals) -> None:
    """Hand a stop signal received during start-up to the worker once it runs."""
    await worker.started.wait()
    if early.received is not None:
        log.info("worker.stopping", signal=early.received.name, during="start-up")
        worker.request_stop()


async def serve(parts: ProcessParts) -> None:
    """Run the worker, the HTTP server on `PORT`, the reloader and the depth gauges."""
    try:
        async with anyio.create_task_group() as tg:
            if parts.early is not None:
                tg.start_soon(_stop_if_signalled_early, parts.worker, parts.early)
            if parts.reloader is not None:
                tg.start_soon(parts.reloader.run)
            tg.start_soon(telemetry.depth_loop, parts.services.stats)  # the gauges' snapshot
            await run_with_server(parts.worker, parts.server, parts.settings.port)
            tg.cancel_scope.cancel()
    finally:
        if parts.peers is not None:
            await parts.peers.aclose()  # connection pools closed on every exit
