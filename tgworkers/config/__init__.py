"""Settings: every variable of the service, parsed and validated at start.

This module builds `Settings`; the value parsers are `parsers.py`, the variable
tables `variables.py`, and which variables a reload may change `reload_kinds.py`.

`load_settings(environ, dotenv_path)` is a pure function of its inputs: a `.env`
file is read when present and real environment variables win over it. A bad
value raises `ConfigError` with one line naming the variable, what is wrong and
the expected form, never the value of a secret. Settings are frozen; a hot reload
builds a whole new `Settings` and swaps one reference, so no reader ever sees a
half-applied document.
"""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import msgspec
from dotenv import dotenv_values

from tgworkers.config.parsers import check_schedule, parse, parse_bool, split_cluster_url, url
from tgworkers.config.reload_kinds import DYNAMIC_VARIABLES, VariableKind, variable_kind
from tgworkers.config.variables import (
    OTEL_CHECKED,
    OVERRIDE_PREFIXES,
    PEERS,
    SCALARS,
    SECRET_VARIABLES,
    SECRETS,
    overrides,
    peer_values,
    rates,
)
from tgworkers.engine.settings import EngineSettings, ProcessorOverrides
from tgworkers.errors import ConfigError
from tgworkers.redact import redact_url
from tgworkers.secrets import Secret

__all__ = [
    "DYNAMIC_VARIABLES",
    "OVERRIDE_PREFIXES",
    "PEERS",
    "SECRET_VARIABLES",
    "ProcessorOverrides",
    "Settings",
    "VariableKind",
    "check_processor_names",
    "default_consumer_name",
    "load_settings",
    "merged_environment",
    "parse_bool",
    "split_cluster_url",
    "url",
    "variable_kind",
]

_SCALARS = SCALARS  # the tables by their former names (tests/unit/test_config.py reads them)
_SECRETS = SECRETS
_OTEL_CHECKED = OTEL_CHECKED


class Settings(EngineSettings, frozen=True, kw_only=True):
    """Every setting of a tgworkers process (see docs/configuration.md).

    The engine's own fields come from `EngineSettings`; the rest belong to the
    layers above it (HTTP, peers, jobs, telemetry, the reloader).
    """

    service_id: str = "tgworkers"
    service_name: str = "tgworkers"
    environment: str = "development"
    port: int | None = None
    log_level: str = "info"
    log_format: str = "auto"
    consumer_name: str | None = None
    peer_urls: dict[str, str] = msgspec.field(default_factory=dict)
    peer_timeout_s: dict[str, float] = msgspec.field(default_factory=dict)
    peer_connect_timeout_s: float = 2.0
    peer_total_timeout_s: float = 10.0
    service_jwt_private_jwk: Secret[str] | None = None
    service_jwt_issuer: str = "tgworkers"
    service_jwt_alg: str = "EdDSA"
    processors: tuple[str, ...] | None = None
    orphan_hold_ttl_ms: int = 3_600_000
    campaign_proof_deadline_ms: int = 86_400_000
    cfb_price_symbols: tuple[str, ...] = ("TON-USD",)
    price_bars_retention: int = 1440
    admin_token: Secret[str] | None = None
    admin_trusted_jwks: Secret[str] | None = None
    metrics_token: Secret[str] | None = None
    admin_readonly_token: Secret[str] | None = None
    admin_jwt_issuers: tuple[str, ...] = ()
    admin_jwt_max_lifetime_s: int = 600
    console_session_secret: Secret[str] | None = None
    console_session_ttl_s: int = 28_800
    trace_url_template: str | None = None
    config_url: str | None = None
    config_file: str | None = None
    config_poll_s: float = 15.0
    config_wait_s: float = 10.0
    enable_flags: dict[str, bool] = msgspec.field(default_factory=dict)
    otel_sdk_disabled: bool = False
    otel_exporter_otlp_endpoint: str | None = None
    otel_service_name: str | None = None
    otel_exporter_otlp_traces_endpoint: str | None = None
    otel_exporter_otlp_metrics_endpoint: str | None = None
    otel_metric_export_interval: int = 15_000
    histogram_samples_per_s: int = 500
    process_spans_per_s: int = 200

    def enabled(self, flag: str | None, default: bool) -> bool:  # noqa: FBT001
        if flag is None:
            return default
        return self.enable_flags.get(flag, default)

    def redacted_redis_url(self) -> str:
        """The Redis URL with every credential form masked, safe for logs and stats."""
        return redact_url(self.redis_url.reveal())


# --------------------------------------------------------------------------- parsers


def _environment_name(env: Mapping[str, str]) -> str:
    return (env.get("NODE_ENV") or env.get("TGW_ENV") or "development").strip() or "development"


def merged_environment(environ: Mapping[str, str], dotenv_path: Path | None) -> dict[str, str]:
    """`.env` values overlaid by the real environment (which wins)."""
    merged: dict[str, str] = {}
    if dotenv_path is not None and dotenv_path.is_file():
        merged.update({k: v for k, v in dotenv_values(dotenv_path).items() if v is not None})
    merged.update(environ)
    return merged


def _table_values(env: Mapping[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for table, secret in ((_SCALARS, False), (_SECRETS, True)):
        for name, (field, parser) in table.items():
            raw = env.get(name)
            if raw is None or raw.strip() == "":
                continue
            value = parse(name, raw, parser, secret=secret)
            values[field] = Secret(value) if secret else value
    for name, parser in _OTEL_CHECKED.items():
        if (raw := env.get(name, "")).strip():
            parse(name, raw, parser, secret=False)
    if "redis_url" in values:
        url, values["redis_cluster"] = split_cluster_url(values["redis_url"].reveal())
        values["redis_url"] = Secret(url)
    return values


def _crons(env: Mapping[str, str], tz: str) -> dict[str, str]:
    crons = {n: v.strip() for n, v in env.items() if n.startswith("CRON_") and v.strip()}
    for name, value in sorted(crons.items()):
        check_schedule(name, value, tz)
    return crons


def _check_consistency(settings: Settings) -> None:
    """Rules that span two variables."""
    if settings.backoff_max_ms < settings.backoff_default_ms:
        raise ConfigError("BACKOFF_MAX_MS: must be >= BACKOFF_DEFAULT_MS")
    if settings.config_url and settings.config_file:
        raise ConfigError("CONFIG_FILE: set either CONFIG_URL or CONFIG_FILE, not both")
    if settings.admin_trusted_jwks is not None and not settings.admin_jwt_issuers:
        raise ConfigError("ADMIN_JWT_ISSUERS: required when ADMIN_TRUSTED_JWKS is set")
    token, readonly = settings.admin_token, settings.admin_readonly_token
    if token is not None and readonly is not None and token == readonly:
        raise ConfigError("ADMIN_READONLY_TOKEN: must differ from ADMIN_TOKEN")


def load_settings(environ: Mapping[str, str], dotenv_path: Path | None = None) -> Settings:
    """Parse and validate every variable; raises `ConfigError` on the first bad one."""
    env = merged_environment(environ, dotenv_path)
    values: dict[str, Any] = {"environment": _environment_name(env), **_table_values(env)}
    values["peer_urls"], values["peer_timeout_s"] = peer_values(env)
    values["enable_flags"] = {
        name: parse(name, raw, parse_bool, secret=False)
        for name, raw in env.items()
        if name.startswith("ENABLE_")
    }
    values["crons"] = _crons(env, values.get("schedules_tz", "UTC"))
    values["overrides"] = overrides(env)
    values["queue_rates"], values["peer_rates"] = rates(env)
    settings = Settings(**values)
    _check_consistency(settings)
    return settings


def check_processor_names(settings: Settings, env_names: set[str]) -> None:
    """Every `CONCURRENCY_<P>`-style variable names a known processor (typos stop start-up)."""
    for proc in sorted(set(settings.overrides) - env_names):
        fields = msgspec.structs.asdict(settings.overrides[proc])
        field = next(iter(fields))
        prefix, suffix = next(
            (pre, suf) for pre, (suf, f) in OVERRIDE_PREFIXES.items() if f == field
        )
        known = ", ".join(sorted(env_names))
        raise ConfigError(f"{prefix}{proc}{suffix}: no processor {proc}; known: {known}")
    for proc in sorted(set(settings.queue_rates) - env_names):
        known = ", ".join(sorted(env_names))
        raise ConfigError(f"RATE_QUEUE_{proc}_PER_S: no processor {proc}; known: {known}")


def default_consumer_name(base: str | None = None) -> str:
    """`<CONSUMER_NAME or hostname:pid>~<6 random hex>`: unique to this process start.

    `hostname:pid` repeats (`host:1` in every container with host networking, a
    restarted container keeps its name) and `CONSUMER_NAME` can be set twice; two
    processes sharing a name could not fence each other, and a restart would
    inherit a dead process's entries by name. The suffix makes every start new.
    """
    return f"{base or f'{socket.gethostname()}:{os.getpid()}'}~{secrets.token_hex(3)}"
