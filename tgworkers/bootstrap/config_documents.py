"""A hot-reload document, validated whole into new settings before anything is touched.

Only dynamic keys are taken (`config.variable_kind`); secrets and static keys are
ignored with one warning per key; an unknown key or a bad value rejects the whole
document with one line naming it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

import msgspec
import structlog

from tgworkers.config import Settings, check_processor_names, load_settings, variable_kind
from tgworkers.engine.registry import Processor, Registry
from tgworkers.errors import ConfigError
from tgworkers.secrets import Secret

log = structlog.get_logger("tgworkers.config")

METADATA_KEYS: Final = frozenset({"version"})
"""Lower-case keys a document may carry about itself; never variables."""

Select = Callable[[Settings], Sequence[Processor]]
"""Which processors run under these settings (`run`'s `select_processors`)."""


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
