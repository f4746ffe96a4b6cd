"""Settings: every variable of the service, parsed and validated at start.

`load_settings(environ, dotenv_path)` is a pure function of its inputs: a `.env`
file is read when present and real environment variables win over it. A bad
value raises `ConfigError` with one line naming the variable, what is wrong and
the expected form, never the value of a secret. Settings are frozen; a hot reload
builds a whole new `Settings` and swaps one reference, so no reader ever sees a
half-applied document.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final, TypeVar
from urllib.parse import urlsplit

import msgspec
from dotenv import dotenv_values

from tgworkers.engine.retry import RetryPolicy
from tgworkers.errors import ConfigError
from tgworkers.secrets import Secret

T = TypeVar("T")

SECRET_VARIABLES: Final = frozenset(
    {"SERVICE_JWT_PRIVATE_JWK", "ADMIN_TOKEN", "METRICS_TOKEN", "REDIS_URL", "ADMIN_TRUSTED_JWKS"}
)
"""Never taken from a hot-reload document, never echoed in a message."""

OVERRIDE_PREFIXES: Final = {
    "CONCURRENCY_": ("", "concurrency"),
    "MAX_ATTEMPTS_": ("", "max_attempts"),
    "BACKOFF_": ("_MS", "backoff_ms"),
    "TIMEOUT_": ("_S", "timeout_s"),
    "PARTITIONS_": ("", "partitions"),
}
_RESERVED_BACKOFF: Final = frozenset({"BACKOFF_DEFAULT_MS", "BACKOFF_MAX_MS"})
PEERS: Final = ("payhub", "playhub", "campaigns", "escrow", "discovery", "price")


class ProcessorOverrides(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """Per-processor values from `CONCURRENCY_<P>`, `MAX_ATTEMPTS_<P>`, ..."""

    concurrency: int | None = None
    max_attempts: int | None = None
    backoff_ms: int | None = None
    timeout_s: float | None = None
    partitions: int | None = None


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    """Every setting of a tgworkers process (see docs/configuration.md)."""

    service_id: str = "tgworkers"
    service_name: str = "tgworkers"
    environment: str = "development"
    port: int | None = None
    log_level: str = "info"
    log_format: str = "auto"
    redis_url: Secret[str] = msgspec.field(
        default_factory=lambda: Secret("redis://127.0.0.1:6379/0")
    )
    consumer_name: str | None = None
    peer_urls: dict[str, str] = msgspec.field(default_factory=dict)
    peer_timeout_s: dict[str, float] = msgspec.field(default_factory=dict)
    peer_connect_timeout_s: float = 2.0
    peer_total_timeout_s: float = 10.0
    service_jwt_private_jwk: Secret[str] | None = None
    service_jwt_issuer: str = "tgworkers"
    service_jwt_alg: str = "EdDSA"
    queue_prefix: str = "tgw"
    dlq_suffix: str = ":dlq"
    max_attempts_default: int = 10
    backoff_default_ms: int = 1000
    backoff_max_ms: int = 300_000
    visibility_timeout_ms: int = 30_000
    max_deliveries: int | None = None
    dedupe_ttl_s: int = 86_400
    max_payload_bytes: int = 65_536
    shutdown_grace_s: float = 25.0
    processors: tuple[str, ...] | None = None
    schedules_tz: str = "UTC"
    orphan_hold_ttl_ms: int = 3_600_000
    campaign_proof_deadline_ms: int = 86_400_000
    cfb_price_symbols: tuple[str, ...] = ("TON-USD",)
    price_bars_retention: int = 1440
    admin_token: Secret[str] | None = None
    admin_trusted_jwks: Secret[str] | None = None
    metrics_token: Secret[str] | None = None
    config_url: str | None = None
    config_file: str | None = None
    config_poll_s: float = 15.0
    enable_flags: dict[str, bool] = msgspec.field(default_factory=dict)
    crons: dict[str, str] = msgspec.field(default_factory=dict)
    overrides: dict[str, ProcessorOverrides] = msgspec.field(default_factory=dict)
    paused_queues: tuple[str, ...] = ()

    @property
    def max_deliveries_effective(self) -> int:
        return self.max_deliveries or self.max_attempts_default

    def processor_overrides(self, env_name: str) -> ProcessorOverrides:
        return self.overrides.get(env_name, ProcessorOverrides())

    def retry_policy(self, env_name: str) -> RetryPolicy:
        o = self.processor_overrides(env_name)
        return RetryPolicy(
            base_ms=o.backoff_ms or self.backoff_default_ms,
            cap_ms=self.backoff_max_ms,
            max_attempts=o.max_attempts or self.max_attempts_default,
        )

    def enabled(self, flag: str | None, default: bool) -> bool:  # noqa: FBT001
        if flag is None:
            return default
        return self.enable_flags.get(flag, default)

    def redacted_redis_url(self) -> str:
        """The Redis URL with any password replaced by `***`, safe for logs."""
        parts = urlsplit(self.redis_url.reveal())
        if parts.password is None:
            return parts.geturl()
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return parts._replace(netloc=netloc).geturl()


# --------------------------------------------------------------------------- parsers


def _int(lo: int, hi: int | None = None) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        try:
            value = int(raw.strip().replace("_", ""))
        except ValueError:
            raise ValueError(f"expected an integer, got {raw!r}") from None
        if value < lo or (hi is not None and value > hi):
            bound = f">= {lo}" if hi is None else f"between {lo} and {hi}"
            raise ValueError(f"expected an integer {bound}, got {value}")
        return value

    return parse


def _float(lo: float) -> Callable[[str], float]:
    def parse(raw: str) -> float:
        try:
            value = float(raw.strip())
        except ValueError:
            raise ValueError(f"expected a number, got {raw!r}") from None
        if value < lo:
            raise ValueError(f"expected a number >= {lo:g}, got {value:g}")
        return value

    return parse


_TRUE: Final = frozenset({"1", "true", "yes", "on"})
_FALSE: Final = frozenset({"0", "false", "no", "off", ""})


def parse_bool(raw: str) -> bool:
    low = raw.strip().lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise ValueError(f"expected true or false, got {raw!r}")


def _choice(*options: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        value = raw.strip()
        if value.lower() not in {o.lower() for o in options}:
            raise ValueError(f"expected one of {', '.join(options)}, got {raw!r}")
        return next(o for o in options if o.lower() == value.lower())

    return parse


def _url(*schemes: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        value = raw.strip()
        parts = urlsplit(value)
        if parts.scheme not in schemes or not parts.netloc:
            raise ValueError(f"expected a URL starting with {' or '.join(schemes)}://")
        return value.rstrip("/")

    return parse


def _csv(raw: str) -> tuple[str, ...]:
    return tuple(x.strip() for x in raw.split(",") if x.strip())


def _text(raw: str) -> str:
    if not raw.strip():
        raise ValueError("expected a non-empty value")
    return raw.strip()


def _tz(raw: str) -> str:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError  # noqa: PLC0415 - start-up only

    try:
        ZoneInfo(raw.strip())
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"expected an IANA time zone such as UTC or Europe/Berlin, got {raw!r}"
        ) from None
    return raw.strip()


_SCALARS: Final[dict[str, tuple[str, Callable[[str], Any]]]] = {
    "SERVICE_ID": ("service_id", _text),
    "SERVICE_NAME": ("service_name", _text),
    "PORT": ("port", _int(0, 65535)),
    "LOG_LEVEL": ("log_level", _choice("debug", "info", "warning", "error")),
    "LOG_FORMAT": ("log_format", _choice("auto", "json", "console")),
    "CONSUMER_NAME": ("consumer_name", _text),
    "SERVICE_JWT_ISSUER": ("service_jwt_issuer", _text),
    "SERVICE_JWT_ALG": ("service_jwt_alg", _choice("EdDSA", "Ed25519")),
    "QUEUE_PREFIX": ("queue_prefix", _text),
    "DLQ_SUFFIX": ("dlq_suffix", _text),
    "MAX_ATTEMPTS_DEFAULT": ("max_attempts_default", _int(1, 1000)),
    "BACKOFF_DEFAULT_MS": ("backoff_default_ms", _int(0)),
    "BACKOFF_MAX_MS": ("backoff_max_ms", _int(0)),
    "VISIBILITY_TIMEOUT_MS": ("visibility_timeout_ms", _int(500)),
    "MAX_DELIVERIES": ("max_deliveries", _int(1, 1000)),
    "DEDUPE_TTL_S": ("dedupe_ttl_s", _int(0)),
    "MAX_PAYLOAD_BYTES": ("max_payload_bytes", _int(16, 64 * 1024 * 1024)),
    "SHUTDOWN_GRACE_S": ("shutdown_grace_s", _float(0)),
    "PROCESSORS": ("processors", _csv),
    "SCHEDULES_TZ": ("schedules_tz", _tz),
    "ORPHAN_HOLD_TTL_MS": ("orphan_hold_ttl_ms", _int(0)),
    "CAMPAIGN_PROOF_DEADLINE_MS": ("campaign_proof_deadline_ms", _int(0)),
    "CFB_PRICE_SYMBOLS": ("cfb_price_symbols", _csv),
    "PRICE_BARS_RETENTION": ("price_bars_retention", _int(1)),
    "CONFIG_URL": ("config_url", _url("http", "https")),
    "CONFIG_FILE": ("config_file", _text),
    "CONFIG_POLL_S": ("config_poll_s", _float(0.05)),
    "PEER_CONNECT_TIMEOUT_S": ("peer_connect_timeout_s", _float(0.01)),
    "PEER_TIMEOUT_S": ("peer_total_timeout_s", _float(0.01)),
    "PAUSED_QUEUES": ("paused_queues", _csv),
}
_SECRETS: Final[dict[str, tuple[str, Callable[[str], Any]]]] = {
    "REDIS_URL": ("redis_url", _url("redis", "rediss", "unix")),
    "SERVICE_JWT_PRIVATE_JWK": ("service_jwt_private_jwk", _text),
    "ADMIN_TOKEN": ("admin_token", _text),
    "ADMIN_TRUSTED_JWKS": ("admin_trusted_jwks", _text),
    "METRICS_TOKEN": ("metrics_token", _text),
}


def _parse(name: str, raw: str, parser: Callable[[str], T], *, secret: bool) -> T:
    try:
        return parser(raw)
    except ValueError as exc:
        detail = str(exc)
        if secret:  # never echo any part of a secret
            detail = detail.split(", got", maxsplit=1)[0]
        raise ConfigError(f"{name}: {detail}") from None


def _environment_name(env: Mapping[str, str]) -> str:
    return (env.get("NODE_ENV") or env.get("TGW_ENV") or "development").strip() or "development"


def _peer_values(env: Mapping[str, str]) -> tuple[dict[str, str], dict[str, float]]:
    urls: dict[str, str] = {}
    timeouts: dict[str, float] = {}
    for peer in PEERS:
        var = f"SVC_{peer.upper()}_URL"
        if raw := env.get(var, "").strip():
            urls[peer] = _parse(var, raw, _url("http", "https"), secret=False)
        tvar = f"SVC_{peer.upper()}_TIMEOUT_S"
        if traw := env.get(tvar, "").strip():
            timeouts[peer] = _parse(tvar, traw, _float(0.01), secret=False)
    return urls, timeouts


def _override_for(name: str) -> tuple[str, str] | None:
    """(processor env name, field) for a per-processor variable, else None."""
    if name in _RESERVED_BACKOFF or name == "MAX_ATTEMPTS_DEFAULT":
        return None
    for prefix, (suffix, field) in OVERRIDE_PREFIXES.items():
        if name.startswith(prefix) and name.endswith(suffix) and len(name) > len(prefix + suffix):
            return name[len(prefix) : len(name) - len(suffix) or None], field
    return None


def _overrides(env: Mapping[str, str]) -> dict[str, ProcessorOverrides]:
    parsers: dict[str, Callable[[str], Any]] = {
        "concurrency": _int(1, 10_000),
        "max_attempts": _int(1, 1000),
        "backoff_ms": _int(0),
        "timeout_s": _float(0.001),
        "partitions": _int(1, 1024),
    }
    collected: dict[str, dict[str, Any]] = {}
    for name, raw in env.items():
        if (hit := _override_for(name)) is None or not raw.strip():
            continue
        proc, field = hit
        collected.setdefault(proc, {})[field] = _parse(name, raw, parsers[field], secret=False)
    return {proc: ProcessorOverrides(**values) for proc, values in collected.items()}


def merged_environment(environ: Mapping[str, str], dotenv_path: Path | None) -> dict[str, str]:
    """`.env` values overlaid by the real environment (which wins)."""
    merged: dict[str, str] = {}
    if dotenv_path is not None and dotenv_path.is_file():
        merged.update({k: v for k, v in dotenv_values(dotenv_path).items() if v is not None})
    merged.update(environ)
    return merged


def load_settings(environ: Mapping[str, str], dotenv_path: Path | None = None) -> Settings:
    """Parse and validate every variable; raises `ConfigError` on the first bad one."""
    env = merged_environment(environ, dotenv_path)
    values: dict[str, Any] = {"environment": _environment_name(env)}
    for table, secret in ((_SCALARS, False), (_SECRETS, True)):
        for name, (field, parser) in table.items():
            raw = env.get(name)
            if raw is None or raw.strip() == "":
                continue
            value = _parse(name, raw, parser, secret=secret)
            values[field] = Secret(value) if secret else value
    values["peer_urls"], values["peer_timeout_s"] = _peer_values(env)
    values["enable_flags"] = {
        name: _parse(name, raw, parse_bool, secret=False)
        for name, raw in env.items()
        if name.startswith("ENABLE_")
    }
    values["crons"] = {n: v.strip() for n, v in env.items() if n.startswith("CRON_") and v.strip()}
    values["overrides"] = _overrides(env)
    settings = Settings(**values)
    if settings.backoff_max_ms < settings.backoff_default_ms:
        raise ConfigError("BACKOFF_MAX_MS: must be >= BACKOFF_DEFAULT_MS")
    return settings


def default_consumer_name() -> str:
    """`<hostname>:<pid>`: stable for a process's life, and across restarts of PID 1."""
    import os  # noqa: PLC0415

    return f"{socket.gethostname()}:{os.getpid()}"
