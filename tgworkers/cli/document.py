"""The config document (`CONFIG_URL` / `CONFIG_FILE`) as the operator commands see it.

Workers apply the document over the environment (bootstrap/reload.py); a command
that ignored it would report another world: `stats` saying "running" for a queue
the document pauses, `schedules` showing the environment's cron. So a command
reads the document once, the way a worker does (`build_document`: dynamic keys
only, secrets and static keys ignored), and runs on the settings it gives.
When the document cannot be read or is rejected, the command goes on with the
environment's settings and says so in one line on stderr.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import anyio

from tgworkers.bootstrap.config_documents import build_document
from tgworkers.bootstrap.config_sources import Fetched, SourceUnavailableError, source_for
from tgworkers.config import Settings, merged_environment
from tgworkers.engine.registry import Registry
from tgworkers.errors import ConfigError
from tgworkers.redact import redact_url


def _warn(where: str, why: str) -> None:
    sys.stderr.write(
        f"tgworkers: config document {where}: {why}; showing the environment's settings\n"
    )


def with_document(settings: Settings, registry: Registry) -> Settings:
    """`settings` with the config document applied, as workers apply it."""
    source = source_for(settings)
    if source is None:
        return settings
    where = redact_url(source.description)

    async def fetch() -> Fetched | None:
        try:
            return await source.fetch()
        finally:
            await source.aclose()

    try:
        fetched = anyio.run(fetch)
    except SourceUnavailableError as exc:
        _warn(where, f"unavailable ({exc})")
        return settings
    if fetched is None:
        return settings
    base_env = merged_environment(os.environ, Path(".env"))
    everything = tuple(registry.processors.values())
    try:
        _, new, _ = build_document(
            fetched.body, fetched.version, base_env=base_env, registry=registry,
            select=lambda _: everything, warned=set(),
        )  # fmt: skip
    except ConfigError as exc:
        _warn(where, f"rejected ({exc})")
        return settings
    return new
