"""`run [--processors a,b]`: run processors, their schedules and the HTTP server."""

from __future__ import annotations

import argparse
import functools
import os
from pathlib import Path
from typing import Any

import anyio
import structlog

from tgworkers.cli.app import registry_for, settings_from_env, setup_logging
from tgworkers.config import (
    Settings,
    check_processor_names,
    default_consumer_name,
    merged_environment,
)
from tgworkers.engine import telemetry
from tgworkers.engine.context import Resources
from tgworkers.engine.registry import Processor, Registry
from tgworkers.engine.reload import Reloader, build_reloader
from tgworkers.engine.stats import StatsReader
from tgworkers.engine.telemetry import count_ledger_violation, setup_telemetry
from tgworkers.engine.worker import Worker
from tgworkers.errors import ConfigError, InputError
from tgworkers.http.server import embedded_server, run_with_server
from tgworkers.jobs.payhub.ledger_recalc import violation_hooks
from tgworkers.jobs.settings import JobSettings, missing_requirements, needs_peers, peers_config
from tgworkers.peers import Peers, ServiceKey, build_peers

log = structlog.get_logger("tgworkers.run")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("run", help="run processors until SIGTERM/SIGINT")
    p.add_argument("--processors", help="comma list of processor or job-type names")
    p.add_argument("--app", help="module:ATTR holding the processors (default: the platform's)")
    p.set_defaults(func=main)


def select_processors(
    registry: Registry, settings: Settings, names: str | None
) -> tuple[Processor, ...]:
    """`--processors`, else `PROCESSORS`, else every processor whose flag is on."""
    try:
        if names:
            return registry.select(names)
    except InputError as exc:
        raise ConfigError(f"--processors: {exc}") from None
    try:
        if settings.processors:
            return registry.select(settings.processors)
    except InputError as exc:
        raise ConfigError(f"PROCESSORS: {exc}") from None
    return tuple(
        p
        for p in registry.processors.values()
        if settings.enabled(p.enabled_by, p.enabled_default)
        and not missing_requirements(settings, p)  # logged as skipped by `main`
    )


def check_requirements(
    registry: Registry, settings: Settings, chosen: tuple[Processor, ...]
) -> None:
    """Refuse a chosen processor whose required variables are unset, naming the first.

    One switched on only by its `ENABLE_*` flag (or its default) was left out by
    `select_processors`; it is logged as skipped, saying why.
    """
    for proc in chosen:
        if missing := missing_requirements(settings, proc):
            raise ConfigError(f"{missing[0]}: not set; processor {proc.name} requires it")
    for proc in registry.processors.values():
        enabled = settings.enabled(proc.enabled_by, proc.enabled_default)
        if proc not in chosen and enabled and (missing := missing_requirements(settings, proc)):
            log.warning("processor.skipped", processor=proc.name, missing=missing,
                            reason="required variables are not set")  # fmt: skip


def job_resources(registry: Registry, settings: Settings) -> tuple[Resources, Peers | None]:
    """The jobs' settings and, when a processor calls peers and a key is set, the peers."""
    resources = Resources(JobSettings.from_settings(settings))
    jwk = settings.service_jwt_private_jwk
    if jwk is None or not needs_peers(tuple(registry.processors.values())):
        return resources, None
    peers = build_peers(peers_config(settings), ServiceKey.from_jwk_text(jwk))
    resources.add(peers)
    return resources, peers


def check_service_key(settings: Settings) -> None:
    """Load `SERVICE_JWT_PRIVATE_JWK` at start, so a bad key stops start-up (exit 2)."""
    if settings.service_jwt_private_jwk is None:
        return
    try:
        from tgworkers.peers.auth import ServiceKey  # noqa: PLC0415 - start-up only
    except ImportError:  # the peers package is optional for the engine alone
        return
    ServiceKey.from_jwk_text(settings.service_jwt_private_jwk)


def main(args: argparse.Namespace) -> int:
    settings = settings_from_env()
    registry = registry_for(args.app)
    processors = select_processors(registry, settings, args.processors)
    if not processors:
        raise ConfigError("no processor selected: pass --processors or set PROCESSORS / ENABLE_*")
    check_processor_names(settings, {p.env_name for p in registry.processors.values()})
    check_service_key(settings)
    setup_logging(settings)
    setup_telemetry(settings)  # before the worker: its parts take the active telemetry
    if count_ledger_violation not in violation_hooks:
        violation_hooks.append(count_ledger_violation)
    check_requirements(registry, settings, processors)
    resources, peers = job_resources(registry, settings)
    worker = Worker(
        settings=settings,
        registry=registry,
        processors=processors,
        consumer=default_consumer_name(settings.consumer_name),
        resources=resources,
    )
    if settings.port is not None:
        embedded_server(worker, settings, settings.port)  # a bad ADMIN_TRUSTED_JWKS exits 2 now
    backend_options: dict[str, Any] = {}
    try:
        import uvloop  # noqa: F401, PLC0415 - optional speed-up

        backend_options["use_uvloop"] = True
    except ImportError:
        pass
    select = functools.partial(select_processors, registry, names=args.processors)
    base_env = merged_environment(os.environ, Path(".env"))
    reloader = build_reloader(worker, registry, select, base_env)
    if reloader is not None:
        telemetry.active().track_reloader(reloader)
    try:
        anyio.run(
            serve, worker, reloader, peers, backend="asyncio", backend_options=backend_options
        )
    except BaseExceptionGroup as group:  # a ConfigError found at start (partition counts)
        found: BaseException | None = group.subgroup(ConfigError)
        while isinstance(found, BaseExceptionGroup):
            found = found.exceptions[0]
        if found is None:
            raise
        raise found from None
    finally:
        telemetry.shutdown()  # flush pending spans and metrics
    return 0


async def serve(worker: Worker, reloader: Reloader | None, peers: Peers | None = None) -> None:
    """Run the worker (with the HTTP server on `PORT`) and the config reloader if any."""
    try:
        async with anyio.create_task_group() as tg:
            if reloader is not None:
                tg.start_soon(reloader.run)
            stats = StatsReader(worker.redis, worker.registry, worker.layout)
            tg.start_soon(telemetry.depth_loop, stats)  # the queue gauges' snapshot
            await run_with_server(worker, worker.settings)
            tg.cancel_scope.cancel()
    finally:
        if peers is not None:
            await peers.aclose()  # connection pools closed on every exit
