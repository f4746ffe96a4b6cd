"""What every command needs: settings, logging, the registry and Redis.

`--app module:ATTR` (or `TGWORKERS_APP`) swaps the registry's processors for
another tuple, which is how tests and benches run their own job types through
the real `run` command.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Any

from tgworkers.config import Settings, load_settings
from tgworkers.engine.registry import Processor, Registry
from tgworkers.errors import ConfigError
from tgworkers.logs import configure_logging


def settings_from_env() -> Settings:
    return load_settings(os.environ, Path(".env"))


def load_processors(spec: str | None) -> tuple[Processor, ...]:
    spec = spec or os.environ.get("TGWORKERS_APP")
    if not spec:
        from tgworkers.jobs import PROCESSORS  # noqa: PLC0415 - the default app

        return PROCESSORS
    module_name, _, attr = spec.partition(":")
    try:
        value: Any = getattr(importlib.import_module(module_name), attr or "PROCESSORS")
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"--app: cannot load {spec!r}: {exc}") from None
    return tuple(value)


def registry_for(spec: str | None) -> Registry:
    return Registry(load_processors(spec))


def setup_logging(settings: Settings) -> None:
    secrets = [
        s.reveal()
        for s in (
            settings.service_jwt_private_jwk,
            settings.admin_token,
            settings.metrics_token,
            settings.admin_readonly_token,
            settings.console_session_secret,
        )
        if s is not None
    ]
    configure_logging(settings.log_level, fmt=settings.log_format, secrets=secrets)
