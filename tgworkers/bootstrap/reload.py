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
3. Applying swaps one reference (`worker.settings`, a `Live` every reader of the
   settings shares), so a job reads either the old
   or the new policy, never a mix; then concurrency, pause flags, processors and
   the reload hooks (the scheduler's `replace`) follow.
4. A config service that is down is retried with backoff (cap 5 min) and never
   touches processing: the worker simply keeps the last good settings.
"""

from __future__ import annotations

import hashlib
import inspect
import os
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Protocol

import anyio
import httpx
import msgspec
import structlog

from tgworkers.config import (
    Settings,
    check_processor_names,
    load_settings,
    variable_kind,
)
from tgworkers.engine.registry import Processor, Registry
from tgworkers.engine.worker import Worker
from tgworkers.errors import ConfigError
from tgworkers.secrets import Secret

log = structlog.get_logger("tgworkers.config")

BACKOFF_CAP_S: Final = 300.0
HTTP_TIMEOUT_S: Final = 5.0
METADATA_KEYS: Final = frozenset({"version"})
"""Lower-case keys a document may carry about itself; never variables."""

Select = Callable[[Settings], Sequence[Processor]]
"""Which processors run under these settings (`run`'s `select_processors`)."""


class SourceUnavailableError(Exception):
    """The config source could not be read (service down, file missing)."""


@dataclass(frozen=True)
class Fetched:
    """A document as read from its source, and the version that names it."""

    body: bytes
    version: str


class ConfigSource(Protocol):
    """Where documents come from; `fetch` returns None when nothing changed."""

    description: str

    async def fetch(self) -> Fetched | None: ...

    async def aclose(self) -> None: ...


class HttpSource:
    """`CONFIG_URL`: a conditional GET; `304 Not Modified` means no change."""

    def __init__(self, url: str, *, timeout_s: float = HTTP_TIMEOUT_S) -> None:
        self.url = url
        self.description = url
        self.etag: str | None = None
        self.client = httpx.AsyncClient(timeout=timeout_s, follow_redirects=True)

    async def fetch(self) -> Fetched | None:
        headers = {"Accept": "application/json"}
        if self.etag:
            headers["If-None-Match"] = self.etag
        try:
            response = await self.client.get(self.url, headers=headers)
        except httpx.HTTPError as exc:
            raise SourceUnavailableError(type(exc).__name__) from None
        if response.status_code == httpx.codes.NOT_MODIFIED:
            return None
        if response.status_code != httpx.codes.OK:
            raise SourceUnavailableError(f"HTTP {response.status_code}")
        self.etag = response.headers.get("ETag")
        return Fetched(response.content, self.etag or digest(response.content))

    async def aclose(self) -> None:
        await self.client.aclose()


class FileSource:
    """`CONFIG_FILE`: read again only when its mtime (or size) changed."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.description = str(path)
        self.stamp: tuple[int, int] | None = None

    async def fetch(self) -> Fetched | None:
        try:
            stat = await anyio.Path(self.path).stat()
            if (stat.st_mtime_ns, stat.st_size) == self.stamp:
                return None
            body = await anyio.Path(self.path).read_bytes()
        except OSError as exc:
            raise SourceUnavailableError(f"{type(exc).__name__}: {self.path}") from None
        self.stamp = (stat.st_mtime_ns, stat.st_size)
        return Fetched(body, f"mtime:{stat.st_mtime_ns}")

    async def aclose(self) -> None:
        return None


def source_for(settings: Settings) -> ConfigSource | None:
    """The source `CONFIG_URL` or `CONFIG_FILE` names, if any."""
    if settings.config_url:
        return HttpSource(settings.config_url)
    if settings.config_file:
        return FileSource(settings.config_file)
    return None


def digest(body: bytes) -> str:
    return "sha256:" + hashlib.sha256(body).hexdigest()[:16]


def _as_env(name: str, value: object) -> str | None:
    """A document value as the environment would spell it (None: unset)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list) and all(isinstance(v, str | int | float) for v in value):
        return ",".join(str(v) for v in value)
    raise ConfigError(f"{name}: expected a string, number, boolean or list of strings")


def settings_diff(old: Settings, new: Settings) -> dict[str, list[Any]]:
    """Changed fields as `{field: [old, new]}`; dicts compared key by key; secrets left out."""
    before, after = msgspec.structs.asdict(old), msgspec.structs.asdict(new)
    changes: dict[str, list[Any]] = {}
    for name, a in before.items():
        b = after[name]
        if a == b or isinstance(a, Secret) or isinstance(b, Secret):
            continue
        if isinstance(a, dict) and isinstance(b, dict):
            for key in sorted(set(a) | set(b)):
                if a.get(key) != b.get(key):
                    changes[f"{name}.{key}"] = [_plain(a.get(key)), _plain(b.get(key))]
        else:
            changes[name] = [_plain(a), _plain(b)]
    return changes


def _plain(value: Any) -> Any:
    """JSON-ready, for the log line (`omit_defaults` drops unset overrides)."""
    return msgspec.to_builtins(value)


def _desired_concurrency(settings: Settings, proc: Processor) -> int:
    return settings.processor_overrides(proc.env_name).concurrency or proc.concurrency


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
        poll_s: float | None = None,
        settings: Settings | None = None,
    ) -> None:
        self.worker = worker
        self.registry = registry
        self.base_env = dict(base_env)
        self.select = select
        self.source = source
        current = settings if settings is not None else worker.settings
        if not isinstance(current, Settings):  # the worker holds only its engine's part
            current = load_settings(self.base_env, None)
        self.settings: Settings = current
        """The whole settings in force; the worker gets the same value on each swap."""
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
        """Swap the settings, then bring processors, concurrency, pauses, hooks in line."""
        worker, old = self.worker, self.settings
        changes = settings_diff(old, new)
        self.settings = worker.settings = new  # one reference: new attempts read the new policy
        switched = await self._switch_processors(processors)
        for rt in worker.runtimes:
            wanted = _desired_concurrency(new, rt.processor)
            if wanted != _desired_concurrency(old, rt.processor):
                rt.set_concurrency(wanted)
        await worker.control_once()  # pause flags at once, not at the next control poll
        for hook in list(worker.reload_hooks):  # typed for the engine's part of the settings
            result = hook(old, new)
            if inspect.isawaitable(result):
                await result
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

    async def _switch_processors(self, processors: Sequence[Processor]) -> dict[str, str]:
        """Start the processors switched on and drain the ones switched off."""
        wanted = {p.name for p in processors}
        running = {rt.queue for rt in self.worker.runtimes}
        switched: dict[str, str] = {}
        for queue in sorted(running - wanted):
            self.worker.remove_runtime(queue)
            switched[queue] = "off"
        for proc in processors:
            if proc.name not in running:
                await self.worker.add_runtime(proc)
                switched[proc.name] = "on"
        return switched


def build_document(
    body: bytes,
    version: str,
    *,
    base_env: Mapping[str, str],
    registry: Registry,
    select: Select,
    warned: set[str],
) -> tuple[str, Settings, Sequence[Processor]]:
    """(version, settings, processors) of a document; raises `ConfigError` naming why.

    Needs no worker, so the first document can be built before the worker is.
    `warned` holds the keys already logged as ignored (one warning per key).
    """
    try:
        doc = msgspec.json.decode(body)
    except msgspec.DecodeError:
        raise ConfigError("document: not valid JSON") from None
    if not isinstance(doc, dict):
        raise ConfigError("document: expected a JSON object of variables")
    if isinstance(doc.get("version"), str | int):
        version = str(doc["version"])
    env = {**base_env, **_dynamic_values(doc, warned)}
    new = load_settings(env, None)
    check_processor_names(new, {p.env_name for p in registry.processors.values()})
    processors = select(new)
    if not processors:
        raise ConfigError("PROCESSORS: no processor selected (set PROCESSORS or ENABLE_*)")
    return version, new, processors


def _dynamic_values(doc: dict[str, Any], warned: set[str]) -> dict[str, str]:
    values: dict[str, str] = {}
    for name, value in doc.items():
        if name in METADATA_KEYS:
            continue
        kind = variable_kind(name)
        if kind == "unknown":
            raise ConfigError(f"{name}: not a known variable")
        if kind in ("secret", "static"):
            _ignore(name, kind, warned)
        elif (text := _as_env(name, value)) is not None:
            values[name] = text
    return values


def _ignore(name: str, kind: str, warned: set[str]) -> None:
    if name in warned:
        return
    warned.add(name)
    why = "never taken from a config document" if kind == "secret" else "needs a restart"
    log.warning("config.key_ignored", key=name, kind=kind, reason=why)


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
