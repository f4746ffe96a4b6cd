"""The first config document, applied before any processor reads.

With `CONFIG_URL` or `CONFIG_FILE` set, a limit the document sets (a concurrency
that protects a peer, a paused queue, a processor switched off) must hold from the
first job, so `run` reads the first document *before* it builds the worker, and
builds it from the document's settings. The wait is bounded by `CONFIG_WAIT_S`: on
timeout (or a rejected document) the worker starts from the environment, logs
`config.started_without_document` once, and `/readyz` answers `config_pending`
until the reloader applies a good document.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import anyio
import structlog

from tgworkers.bootstrap.reload import (
    ConfigSource,
    Reloader,
    Select,
    SourceUnavailableError,
    build_document,
    digest,
    settings_diff,
)
from tgworkers.config import Settings
from tgworkers.engine.registry import Processor, Registry
from tgworkers.errors import ConfigError

log = structlog.get_logger("tgworkers.config")

RETRY_S = 0.25
"""Pause between reads while waiting for the first document."""


@dataclass(frozen=True, slots=True)
class FirstDocument:
    """What the worker starts with: the document's settings, or the environment's."""

    settings: Settings
    processors: tuple[Processor, ...]
    version: str | None = None
    """The applied document's version; None when start-up went on without one."""
    digest: str | None = None
    """Of the document read (also a rejected one, so it is not offered twice)."""

    @property
    def applied(self) -> bool:
        return self.version is not None

    def seed(self, reloader: Reloader) -> Reloader:
        """Tell the reloader what is in force, so its first poll does not apply it again."""
        reloader.awaiting_first = not self.applied
        reloader.seen = self.digest
        if self.digest is not None and not self.applied:
            reloader.counters["rejected"] += 1
        if self.applied:
            reloader.version = self.version
            reloader.counters["applied"] += 1
            reloader.last_applied_at = time.time()
        return reloader


async def wait_for_first_document(  # noqa: PLR0913 - the inputs of one start-up step
    source: ConfigSource,
    *,
    env_settings: Settings,
    env_processors: Sequence[Processor],
    base_env: Mapping[str, str],
    registry: Registry,
    select: Select,
    stopping: Callable[[], bool] = lambda: False,
) -> FirstDocument:
    """Read, validate and adopt the first document within `CONFIG_WAIT_S`.

    `stopping` ends the wait early (a SIGTERM during start-up).
    """
    fallback = FirstDocument(env_settings, tuple(env_processors))
    reason = "no document yet"
    try:
        with anyio.move_on_after(env_settings.config_wait_s):
            while True:
                try:
                    fetched = await source.fetch()
                except SourceUnavailableError as exc:
                    reason = str(exc)
                else:
                    if fetched is not None:
                        return _adopt(
                            fetched.body, fetched.version, fallback, base_env, registry, select
                        )
                if stopping():
                    return fallback
                await anyio.sleep(min(RETRY_S, env_settings.config_poll_s))
    finally:
        with anyio.CancelScope(shield=True):
            await source.aclose()
    log.warning(
        "config.started_without_document",
        source=source.description,
        reason=reason,
        waited_s=env_settings.config_wait_s,
    )
    return fallback


def _adopt(
    body: bytes,
    version: str,
    fallback: FirstDocument,
    base_env: Mapping[str, str],
    registry: Registry,
    select: Select,
) -> FirstDocument:
    try:
        version, new, processors = build_document(
            body, version, base_env=base_env, registry=registry, select=select, warned=set()
        )
    except ConfigError as exc:
        log.warning("config.rejected", version=version, reason=str(exc), kept_version=None)
        log.warning("config.started_without_document", reason="the first document was rejected")
        return FirstDocument(fallback.settings, fallback.processors, digest=digest(body))
    before = {p.name for p in fallback.processors}
    after = {p.name for p in processors}
    switched = {
        **dict.fromkeys(sorted(before - after), "off"),
        **dict.fromkeys(sorted(after - before), "on"),
    }
    log.info(
        "config.applied",
        version=version,
        previous_version=None,
        changes=settings_diff(fallback.settings, new),
        processors=switched,
        before_start=True,
    )
    return FirstDocument(new, tuple(processors), version, digest(body))
