"""Which processors a process runs, the resources their jobs get, and start-up checks.

Shared by `run`, `dev` and the reloader (a document may switch processors on and
off), so the three choose alike.
"""

from __future__ import annotations

import structlog

from tgworkers.config import Settings
from tgworkers.engine.context import Resources
from tgworkers.engine.registry import Processor, Registry
from tgworkers.errors import ConfigError, InputError
from tgworkers.jobs.settings import JobSettings, missing_requirements, needs_peers, peers_config
from tgworkers.peers import Peers, ServiceKey, build_peers

log = structlog.get_logger("tgworkers.run")


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
    registry: Registry, settings: Settings, chosen: tuple[Processor, ...], *, named: bool = False
) -> None:
    """Refuse a chosen processor whose required variables are unset, naming the first.

    One switched on only by its `ENABLE_*` flag (or its default) was left out by
    `select_processors`; it is logged as skipped, saying why. With `named` (the
    processors came from `--processors` or `PROCESSORS`) nothing else was asked
    for, so nothing is logged as skipped.
    """
    for proc in chosen:
        if missing := missing_requirements(settings, proc):
            raise ConfigError(f"{missing[0]}: not set; processor {proc.name} requires it")
    if named or settings.processors:
        return
    for proc in registry.processors.values():
        enabled = settings.enabled(proc.enabled_by, proc.enabled_default)
        if proc not in chosen and enabled and (missing := missing_requirements(settings, proc)):
            log.warning("processor.skipped", processor=proc.name, missing=missing,
                            reason="required variables are not set")  # fmt: skip


def job_resources(
    registry: Registry, settings: Settings, peers: Peers | None = None
) -> tuple[Resources, Peers | None]:
    """The jobs' settings and the peers: `peers` when given (a test's fakes).

    Else the peers are built when a processor calls them and a service key is set.
    """
    resources = Resources(JobSettings.from_settings(settings))
    jwk = settings.service_jwt_private_jwk
    if peers is None and jwk is not None and needs_peers(tuple(registry.processors.values())):
        peers = build_peers(peers_config(settings), ServiceKey.from_jwk_text(jwk))
    if peers is not None:
        resources.add(peers)
    return resources, peers


def check_service_key(settings: Settings) -> None:
    """Load `SERVICE_JWT_PRIVATE_JWK` at start, so a bad key stops start-up (exit 2)."""
    if settings.service_jwt_private_jwk is None:
        return
    ServiceKey.from_jwk_text(settings.service_jwt_private_jwk)
