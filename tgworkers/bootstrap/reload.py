"""Hot reload: poll a config document and apply what changed, without a restart.

The document (`CONFIG_URL`, polled with `If-None-Match`; or `CONFIG_FILE`, polled
by mtime) is a JSON object holding the same keys as the environment. Invariants:

1. A document is validated whole, merged over the start-up environment, into a
   new frozen `Settings`, before anything is touched; a bad one is rejected whole,
   logged once (`config.rejected`), and the last good one stays in force.
2. Only dynamic keys are taken from it (`config.variable_kind`): secrets and
   static keys (Redis URL, queue prefix, port, partitions, …) are ignored with a
   warning logged once per key, so a document can never redirect the worker or
   leak a credential into it.
3. Applying is one call, `Worker.follow`: it swaps one reference (the worker's
   `Live`, which every reader of the settings shares), so a job reads either the
   old or the new policy, never a mix; then what holds state built from the
   settings (processors, concurrency, pause flags, schedules) follows, in the engine.
4. A config service that is down is retried with backoff (cap 5 min) and never
   touches processing: the worker simply keeps the last good settings.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Mapping, Sequence
from typing import Final

import anyio
import structlog

from tgworkers.bootstrap.config_documents import Select, build_document, settings_diff
from tgworkers.bootstrap.config_sources import (
    ConfigSource,
    FileSource,
    HttpSource,
    SourceUnavailableError,
    digest,
    source_for,
)
from tgworkers.config import Settings
from tgworkers.engine.registry import Processor, Registry
from tgworkers.engine.runtime.worker import Worker
from tgworkers.errors import ConfigError

__all__ = [
    "ConfigSource",
    "FileSource",
    "HttpSource",
    "Reloader",
    "Select",
    "SourceUnavailableError",
    "build_document",
    "build_reloader",
    "digest",
    "settings_diff",
    "source_for",
]

log = structlog.get_logger("tgworkers.config")

BACKOFF_CAP_S: Final = 300.0


class Reloader:
    """Polls one source and applies each new good document to one worker."""

    def __init__(  # noqa: PLR0913 - wiring, built once by the bootstrap
        self,
        *,
        worker: Worker,
        registry: Registry,
        base_env: Mapping[str, str],
        select: Select,
        source: ConfigSource,
        settings: Settings,
        poll_s: float | None = None,
    ) -> None:
        self.worker = worker
        self.registry = registry
        self.base_env = dict(base_env)
        self.select = select
        self.source = source
        self.settings = settings
        """The whole settings in force (the worker's `Live` holds the same value, typed
        as the engine's part: `worker.settings` is an `EngineSettings`)."""
        self.poll_s = poll_s or self.settings.config_poll_s
        self.version: str | None = None
        self.counters: dict[str, int] = {
            "applied": 0, "rejected": 0, "unchanged": 0, "unavailable": 0,
        }  # fmt: skip
        """The `tgworkers.config.reloads` metric by outcome (observability exports it)."""
        self.last_applied_at: float | None = None
        self.seen: str | None = None
        """Digest of the last document offered (an identical body is not offered again)."""
        self.awaiting_first = False
        """Start-up went on without a document (`CONFIG_WAIT_S` ran out): `/readyz` says so."""
        self._warned: set[str] = set()
        self._failures = 0
        self._down_since: float | None = None

    # ------------------------------------------------------------------ loop

    async def run(self) -> None:
        """Poll until cancelled; the first poll is at once."""
        await self.worker.started.wait()
        try:
            while not self.worker.stop_requested.is_set():
                delay_s = await self.poll_once()
                with anyio.move_on_after(delay_s):
                    await self.worker.stop_requested.wait()
        finally:
            with anyio.CancelScope(shield=True):
                await self.source.aclose()

    async def poll_once(self) -> float:
        """One poll; returns how long to wait before the next one."""
        try:
            fetched = await self.source.fetch()
        except SourceUnavailableError as exc:
            return self._unavailable(str(exc))
        self._available()
        if fetched is None or digest(fetched.body) == self.seen:
            self.counters["unchanged"] += 1
            return self._jittered(self.poll_s)
        self.seen = digest(fetched.body)
        await self.offer(fetched.body, fetched.version)
        return self._jittered(self.poll_s)

    @property
    def description(self) -> str:
        """Where documents come from (the URL or the file)."""
        return self.source.description

    @staticmethod
    def _jittered(delay_s: float) -> float:
        return delay_s * random.uniform(0.8, 1.2)  # noqa: S311 - spreading polls, not crypto

    def _unavailable(self, reason: str) -> float:
        self.counters["unavailable"] += 1
        self._failures += 1
        if self._down_since is None:
            self._down_since = time.monotonic()
            log.warning("config.unavailable", source=self.source.description, reason=reason)
        return self._jittered(min(self.poll_s * 2 ** min(self._failures, 20), BACKOFF_CAP_S))

    def _available(self) -> None:
        if self._down_since is not None:
            downtime_ms = int((time.monotonic() - self._down_since) * 1000)
            log.info("config.available", source=self.source.description, downtime_ms=downtime_ms)
        self._failures = 0
        self._down_since = None

    # ------------------------------------------------------------------ validate

    async def offer(self, body: bytes, version: str) -> bool:
        """Validate a document whole and apply it; False when it was rejected."""
        try:
            version, new, processors = self.build(body, version)
        except ConfigError as exc:
            self.counters["rejected"] += 1
            log.warning("config.rejected", version=version, reason=str(exc),
                        kept_version=self.version)  # fmt: skip
            return False
        if self.worker.stop_requested.is_set():
            return False
        await self.apply(new, processors, version)
        return True

    def build(self, body: bytes, version: str) -> tuple[str, Settings, Sequence[Processor]]:
        """(version, settings, processors) of a document; raises `ConfigError` naming why."""
        return build_document(
            body, version, base_env=self.base_env, registry=self.registry, select=self.select,
            warned=self._warned,
        )  # fmt: skip

    # ------------------------------------------------------------------ apply

    async def apply(self, new: Settings, processors: Sequence[Processor], version: str) -> None:
        """Hand the new settings to the worker (`Worker.follow`: one `Live` swap), then log."""
        changes = settings_diff(self.settings, new)
        self.settings = new  # the whole settings; the worker's `Live` gets the same value
        switched = await self.worker.follow(new, processors)
        previous, self.version = self.version, version
        self.awaiting_first = False
        if not changes and not switched:
            self.counters["unchanged"] += 1
            log.info("config.unchanged", version=version)
            return
        self.counters["applied"] += 1
        self.last_applied_at = time.time()
        log.info("config.applied", version=version, previous_version=previous,
                 changes=changes, processors=switched)  # fmt: skip


def build_reloader(
    worker: Worker,
    registry: Registry,
    select: Select,
    base_env: Mapping[str, str] | None = None,
    *,
    settings: Settings,
) -> Reloader | None:
    """The reloader `CONFIG_URL` / `CONFIG_FILE` ask for, or None when neither is set."""
    source = source_for(settings)
    if source is None:
        return None
    return Reloader(
        worker=worker,
        registry=registry,
        base_env=os.environ if base_env is None else base_env,
        select=select,
        source=source,
        settings=settings,
    )
