"""`run [--processors a,b]`: run processors, their schedules and the HTTP server.

The command checks its input and hands over to the launcher
(`tgworkers.bootstrap.launcher`), which builds and runs every part of the process
once (`dev` and the testing harness use the same).
"""

from __future__ import annotations

import argparse
import functools
import os
from pathlib import Path

import structlog

from tgworkers.bootstrap.launcher import Reload, launch
from tgworkers.bootstrap.processors import (
    check_requirements,
    check_service_key,
    job_resources,
    select_processors,
)
from tgworkers.bootstrap.signals import EarlySignals
from tgworkers.cli.app import registry_for, settings_from_env, setup_logging
from tgworkers.config import check_processor_names, default_consumer_name, merged_environment
from tgworkers.errors import ConfigError

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
    check_requirements(registry, settings, processors, named=bool(args.processors))
    select = functools.partial(select_processors, registry, names=args.processors)
    reload = Reload(select=select, base_env=merged_environment(os.environ, Path(".env")))
    launcher = launch(
        settings,
        registry,
        processors,
        consumer=default_consumer_name(settings.consumer_name),
        reload=reload,
        early=early,
    )
    launcher.run()
    return 0
