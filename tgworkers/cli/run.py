"""`run [--processors a,b]`: run processors, their schedules and the HTTP server.

The command checks its input and hands over to `tgworkers.bootstrap.process`,
which builds each part of the process once (`dev` uses the same).
"""

from __future__ import annotations

import argparse
import functools
import os
from pathlib import Path
from typing import Any

import anyio
import structlog

from tgworkers.bootstrap.process import build_process, first_document, serve, telemetry_settings
from tgworkers.bootstrap.processors import (
    check_requirements,
    check_service_key,
    job_resources,
    select_processors,
)
from tgworkers.bootstrap.signals import EarlySignals
from tgworkers.cli.app import registry_for, settings_from_env, setup_logging
from tgworkers.config import check_processor_names, default_consumer_name, merged_environment
from tgworkers.engine.telemetry.recorder import count_ledger_violation
from tgworkers.engine.telemetry.setup import setup_telemetry, shutdown_telemetry
from tgworkers.errors import ConfigError
from tgworkers.jobs.payhub.ledger_recalc import violation_hooks

__all__ = ["check_requirements", "job_resources", "main", "register", "select_processors"]

log = structlog.get_logger("tgworkers.run")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("run", help="run processors until SIGTERM/SIGINT")
    p.add_argument("--processors", help="comma list of processor or job-type names")
    p.add_argument("--app", help="module:ATTR holding the processors (default: the platform's)")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    early = EarlySignals().install()  # a SIGTERM during start-up still stops gracefully
    settings = settings_from_env()
    registry = registry_for(args.app)
    processors = select_processors(registry, settings, args.processors)
    if not processors:
        raise ConfigError("no processor selected: pass --processors or set PROCESSORS / ENABLE_*")
    check_processor_names(settings, {p.env_name for p in registry.processors.values()})
    check_service_key(settings)
    setup_logging(settings)
    setup_telemetry(telemetry_settings(settings))  # before the worker: its parts take it
    if count_ledger_violation not in violation_hooks:
        violation_hooks.append(count_ledger_violation)
    check_requirements(registry, settings, processors, named=bool(args.processors))
    select = functools.partial(select_processors, registry, names=args.processors)
    base_env = merged_environment(os.environ, Path(".env"))
    first = first_document(settings, processors, base_env, registry, select, early)
    parts = build_process(
        first.settings,
        registry,
        first.processors,
        consumer=default_consumer_name(settings.consumer_name),
        select=select,
        base_env=base_env,
        first=first,
        early=early,
    )
    backend_options: dict[str, Any] = {}
    try:
        import uvloop  # noqa: F401, PLC0415 - optional speed-up

        backend_options["use_uvloop"] = True
    except ImportError:
        pass
    try:
        anyio.run(serve, parts, backend="asyncio", backend_options=backend_options)
    except BaseExceptionGroup as group:  # a ConfigError found at start (partition counts)
        found: BaseException | None = group.subgroup(ConfigError)
        while isinstance(found, BaseExceptionGroup):
            found = found.exceptions[0]
        if found is None:
            raise
        raise found from None
    finally:
        shutdown_telemetry()  # flush pending spans and metrics
    return 0
