"""Settings: every variable of the service, parsed and validated at start.

`load_settings(environ, dotenv_path)` is a pure function of its inputs: a `.env`
file is read when present and real environment variables win over it. A bad
value raises `ConfigError` with one line naming the variable, what is wrong and
the expected form, never the value of a secret. Settings are frozen; a hot reload
builds a whole new `Settings` and swaps one reference, so no reader ever sees a
half-applied document.
"""

from __future__ import annotations

import base64
import binascii
import json
import socket
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit

import msgspec
from dotenv import dotenv_values

from tgworkers.errors import ConfigError
from tgworkers.secrets import Secret

if TYPE_CHECKING:
    from tgworkers.engine.retry import RetryPolicy

T = TypeVar("T")

SECRET_VARIABLES: Final = frozenset(
    {"SERVICE_JWT_PRIVATE_JWK", "ADMIN_TOKEN", "METRICS_TOKEN", "REDIS_URL", "ADMIN_TRUSTED_JWKS",
     "ADMIN_READONLY_TOKEN", "CONSOLE_SESSION_SECRET"}
)  # fmt: skip
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
    redis_cluster: bool = False
    """`REDIS_URL` named a cluster (`redis+cluster://…` or `?cluster=true`)."""
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
    wait_max_ms: int | None = None
    """Longest a peer's Retry-After/retryAt or a snooze may park a job (None: BACKOFF_MAX_MS)."""
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
    admin_readonly_token: Secret[str] | None = None
    admin_jwt_issuers: tuple[str, ...] = ()
    admin_jwt_max_lifetime_s: int = 600
    console_session_secret: Secret[str] | None = None
    console_session_ttl_s: int = 28_800
    trace_url_template: str | None = None
    config_url: str | None = None
    config_file: str | None = None
    config_poll_s: float = 15.0
    enable_flags: dict[str, bool] = msgspec.field(default_factory=dict)
    crons: dict[str, str] = msgspec.field(default_factory=dict)
    overrides: dict[str, ProcessorOverrides] = msgspec.field(default_factory=dict)
    paused_queues: tuple[str, ...] = ()
    otel_sdk_disabled: bool = False
    otel_exporter_otlp_endpoint: str | None = None
    otel_service_name: str | None = None

    @property
    def max_deliveries_effective(self) -> int:
        return self.max_deliveries or self.max_attempts_default

    def processor_overrides(self, env_name: str) -> ProcessorOverrides:
        return self.overrides.get(env_name, ProcessorOverrides())

    def retry_policy(self, env_name: str) -> RetryPolicy:
        from tgworkers.engine.retry import RetryPolicy  # noqa: PLC0415 - engine imports config

        o = self.processor_overrides(env_name)
        return RetryPolicy(
            base_ms=o.backoff_ms or self.backoff_default_ms,
            cap_ms=self.backoff_max_ms,
            max_attempts=o.max_attempts or self.max_attempts_default,
            wait_cap_ms=self.wait_max_ms,
        )

    def enabled(self, flag: str | None, default: bool) -> bool:  # noqa: FBT001
        if flag is None:
            return default
        return self.enable_flags.get(flag, default)

    def redacted_redis_url(self) -> str:
        """The Redis URL with every credential form masked, safe for logs and stats."""
        from tgworkers.redact import redact_url  # noqa: PLC0415 - keeps config's imports flat

        return redact_url(self.redis_url.reveal())


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
        located = parts.netloc or (parts.scheme == "unix" and parts.path)
        if parts.scheme not in schemes or not located:
            raise ValueError(f"expected a URL starting with {' or '.join(schemes)}://")
        return value.rstrip("/")

    return parse


def _csv(raw: str) -> tuple[str, ...]:
    return tuple(x.strip() for x in raw.split(",") if x.strip())


def _text(raw: str) -> str:
    if not raw.strip():
        raise ValueError("expected a non-empty value")
    return raw.strip()


MIN_ADMIN_TOKEN_CHARS: Final = 24


def _admin_token(raw: str) -> str:
    """A shared secret long enough not to be guessed (24+ characters)."""
    value = raw.strip()
    if len(value) < MIN_ADMIN_TOKEN_CHARS:
        raise ValueError(
            f"expected at least {MIN_ADMIN_TOKEN_CHARS} characters "
            "(e.g. `python -c 'import secrets; print(secrets.token_urlsafe(32))'`)"
        )
    return value


def _trace_template(raw: str) -> str:
    """A URL with a `{traceId}` placeholder."""
    value = _url("http", "https")(raw)
    if "{traceId}" not in value:
        raise ValueError(f"expected a URL containing {{traceId}}, got {raw!r}")
    return value


def _tz(raw: str) -> str:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError  # noqa: PLC0415 - start-up only

    try:
        ZoneInfo(raw.strip())
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"expected an IANA time zone such as UTC or Europe/Berlin, got {raw!r}"
        ) from None
    return raw.strip()


_REDIS_SCHEMES: Final = ("redis", "rediss", "unix", "redis+cluster", "rediss+cluster")


def split_cluster_url(url: str) -> tuple[str, bool]:
    """A `REDIS_URL` without its cluster marker, and whether it named a cluster.

    `redis+cluster://h:6379` and `redis://h:6379?cluster=true` both name a cluster;
    what the Redis client gets is the plain `redis://` form.
    """
    parts = urlsplit(url)
    if not parts.scheme.endswith("+cluster") and "cluster=" not in parts.query:
        return url, False
    cluster = parts.scheme.endswith("+cluster")
    scheme = parts.scheme.removesuffix("+cluster")
    query = parse_qsl(parts.query, keep_blank_values=True)
    rest = [(k, v) for k, v in query if k != "cluster"]
    for key, value in query:
        if key == "cluster":
            cluster = cluster or parse_bool(value)
    return parts._replace(scheme=scheme, query=urlencode(rest)).geturl(), cluster


def _redis_url(raw: str) -> str:
    try:
        value = _url(*_REDIS_SCHEMES)(raw)
    except ValueError:
        raise ValueError(
            "expected redis://host:port/db, rediss://…, unix:///path.sock, "
            "or a cluster: redis+cluster://host:port (or ?cluster=true)"
        ) from None
    try:
        split_cluster_url(value)
    except ValueError:
        raise ValueError("expected cluster=true or cluster=false in the query") from None
    return value


def _b64url_bytes(value: object) -> int:
    """Length of a base64url (unpadded) string's bytes, or -1 when it is not one."""
    if not isinstance(value, str):
        return -1
    try:
        return len(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)))
    except (binascii.Error, ValueError):
        return -1


_ED25519_BYTES: Final = 32


def _ed25519_jwk(raw: str) -> str:
    """A private Ed25519 JWK (`kty` OKP, `crv` Ed25519, 32-byte `x` and `d`)."""
    expected = 'expected a private Ed25519 JWK: {"kty":"OKP","crv":"Ed25519","x":…,"d":…}'
    try:
        jwk = json.loads(raw)
    except ValueError:
        raise ValueError(f"{expected}; it is not JSON") from None
    if not isinstance(jwk, dict) or jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
        raise ValueError(f"{expected}; it is not an Ed25519 key")
    if any(_b64url_bytes(jwk.get(part)) != _ED25519_BYTES for part in ("x", "d")):
        raise ValueError(f"{expected}; x and d must be 32-byte base64url values")
    return raw.strip()


def _jwks(raw: str) -> str:
    """A JWKS document: `{"keys": [{…}, …]}` with at least one key."""
    try:
        doc = json.loads(raw)
    except ValueError:
        raise ValueError('expected a JWKS JSON document {"keys": [...]}; it is not JSON') from None
    keys = doc.get("keys") if isinstance(doc, dict) else None
    if not isinstance(keys, list) or not keys or not all(isinstance(k, dict) for k in keys):
        raise ValueError('expected a JWKS JSON document {"keys": [...]} with at least one key')
    return raw.strip()


def _check_schedule(variable: str, value: str, tz: str) -> None:
    """Validate one `CRON_*` value; the scheduler's parser when it is there.

    `tgworkers.engine.cron.parse_schedule(value, tz=, variable=)` is the one
    source of truth for the schedule syntax; until it exists, croniter's own
    check stands in, so a malformed cron still stops start-up.
    """
    try:
        from tgworkers.engine.cron import (  # type: ignore[import-not-found,unused-ignore] # noqa: PLC0415
            parse_schedule,
        )
    except ImportError:
        from croniter import croniter  # noqa: PLC0415 - start-up and reload only

        if not croniter.is_valid(value):
            raise ConfigError(
                f"{variable}: expected a cron expression such as '*/5 * * * *', got {value!r}"
            ) from None
        return
    try:
        parse_schedule(value, tz=tz, variable=variable)
    except ValueError as exc:
        message = str(exc)
        raise ConfigError(message if variable in message else f"{variable}: {message}") from None


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
    "WAIT_MAX_MS": ("wait_max_ms", _int(0)),
    "VISIBILITY_TIMEOUT_MS": ("visibility_timeout_ms", _int(500)),
    "MAX_DELIVERIES": ("max_deliveries", _int(1, 1000)),
    # below a minute, a schedule tick's id could be forgotten before a slow replica fires it
    "DEDUPE_TTL_S": ("dedupe_ttl_s", _int(60)),
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
    "OTEL_SDK_DISABLED": ("otel_sdk_disabled", parse_bool),
    "OTEL_EXPORTER_OTLP_ENDPOINT": ("otel_exporter_otlp_endpoint", _url("http", "https")),
    "OTEL_SERVICE_NAME": ("otel_service_name", _text),
    "ADMIN_JWT_ISSUERS": ("admin_jwt_issuers", _csv),
    "ADMIN_JWT_MAX_LIFETIME_S": ("admin_jwt_max_lifetime_s", _int(1, 86_400)),
    "CONSOLE_SESSION_TTL_S": ("console_session_ttl_s", _int(60, 7 * 86_400)),
    "TRACE_URL_TEMPLATE": ("trace_url_template", _trace_template),
}
_OTEL_SAMPLERS: Final = (
    "always_on", "always_off", "traceidratio",
    "parentbased_always_on", "parentbased_always_off", "parentbased_traceidratio",
)  # fmt: skip
_OTEL_CHECKED: Final[dict[str, Callable[[str], Any]]] = {
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": _url("http", "https"),
    "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": _url("http", "https"),
    "OTEL_EXPORTER_OTLP_PROTOCOL": _choice("http/protobuf", "http/json", "grpc"),
    "OTEL_TRACES_SAMPLER": _choice(*_OTEL_SAMPLERS),
    "OTEL_TRACES_SAMPLER_ARG": _float(0),
    "OTEL_METRIC_EXPORT_INTERVAL": _int(1),
    "OTEL_EXPORTER_OTLP_TIMEOUT": _int(1),
}
"""Standard OpenTelemetry variables the SDK reads itself: checked, not stored."""
_SECRETS: Final[dict[str, tuple[str, Callable[[str], Any]]]] = {
    "REDIS_URL": ("redis_url", _redis_url),
    "SERVICE_JWT_PRIVATE_JWK": ("service_jwt_private_jwk", _ed25519_jwk),
    "ADMIN_TOKEN": ("admin_token", _admin_token),
    "ADMIN_READONLY_TOKEN": ("admin_readonly_token", _admin_token),
    "ADMIN_TRUSTED_JWKS": ("admin_trusted_jwks", _jwks),
    "METRICS_TOKEN": ("metrics_token", _text),
    "CONSOLE_SESSION_SECRET": ("console_session_secret", _admin_token),
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


def _table_values(env: Mapping[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for table, secret in ((_SCALARS, False), (_SECRETS, True)):
        for name, (field, parser) in table.items():
            raw = env.get(name)
            if raw is None or raw.strip() == "":
                continue
            value = _parse(name, raw, parser, secret=secret)
            values[field] = Secret(value) if secret else value
    for name, parser in _OTEL_CHECKED.items():
        if (raw := env.get(name, "")).strip():
            _parse(name, raw, parser, secret=False)
    if "redis_url" in values:
        url, values["redis_cluster"] = split_cluster_url(values["redis_url"].reveal())
        values["redis_url"] = Secret(url)
    return values


def _crons(env: Mapping[str, str], tz: str) -> dict[str, str]:
    crons = {n: v.strip() for n, v in env.items() if n.startswith("CRON_") and v.strip()}
    for name, value in sorted(crons.items()):
        _check_schedule(name, value, tz)
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
    values["peer_urls"], values["peer_timeout_s"] = _peer_values(env)
    values["enable_flags"] = {
        name: _parse(name, raw, parse_bool, secret=False)
        for name, raw in env.items()
        if name.startswith("ENABLE_")
    }
    values["crons"] = _crons(env, values.get("schedules_tz", "UTC"))
    values["overrides"] = _overrides(env)
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


# --------------------------------------------------------------------------- reload keys

VariableKind = Literal["dynamic", "static", "secret", "unknown"]

DYNAMIC_VARIABLES: Final = frozenset(
    {"MAX_ATTEMPTS_DEFAULT", "BACKOFF_DEFAULT_MS", "BACKOFF_MAX_MS", "WAIT_MAX_MS", "PROCESSORS",
     "PAUSED_QUEUES", "SCHEDULES_TZ"}
)  # fmt: skip
"""Plain variables a hot-reload document may change (besides the families below)."""
_DYNAMIC_FIELDS: Final = frozenset({"concurrency", "max_attempts", "backoff_ms", "timeout_s"})
_STATIC_EXTRA: Final = frozenset({"NODE_ENV", "TGW_ENV"})


def variable_kind(name: str) -> VariableKind:
    """How a hot-reload document's key is treated: applied, ignored, or rejected.

    Dynamic keys are applied live. Static keys (the Redis URL, the queue prefix,
    the port, partitions, …) need a restart and secrets never come from a
    document: both are ignored with a warning. Anything else is a typo, and the
    document is rejected.
    """
    if name in SECRET_VARIABLES:
        return "secret"
    if name in DYNAMIC_VARIABLES or name.startswith(("ENABLE_", "CRON_")):
        return "dynamic"
    if (hit := _override_for(name)) is not None:
        return "dynamic" if hit[1] in _DYNAMIC_FIELDS else "static"
    if name in _SCALARS or name in _STATIC_EXTRA or name.startswith("OTEL_"):
        return "static"
    if any(name in (f"SVC_{p.upper()}_URL", f"SVC_{p.upper()}_TIMEOUT_S") for p in PEERS):
        return "static"
    return "unknown"


def default_consumer_name(base: str | None = None) -> str:
    """`<CONSUMER_NAME or hostname:pid>~<6 random hex>`: unique to this process start.

    `hostname:pid` repeats (`host:1` in every container with host networking, a
    restarted container keeps its name) and `CONSUMER_NAME` can be set twice; two
    processes sharing a name could not fence each other, and a restart would
    inherit a dead process's entries by name. The suffix makes every start new.
    """
    import os  # noqa: PLC0415
    import secrets  # noqa: PLC0415

    return f"{base or f'{socket.gethostname()}:{os.getpid()}'}~{secrets.token_hex(3)}"
