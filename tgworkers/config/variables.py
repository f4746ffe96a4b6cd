"""The variable tables: every variable's name, its field and its parser.

`docs/configuration.md` lists each of them (tests/unit/test_config.py checks it).
Per-processor families (`CONCURRENCY_<P>`, …) and the peers' URLs are read by
pattern here too.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

from tgworkers.config.parsers import (
    admin_token,
    choice,
    csv,
    ed25519_jwk,
    float_min,
    int_in,
    jwks,
    parse,
    parse_bool,
    redis_url,
    text,
    time_zone,
    trace_template,
    url,
)
from tgworkers.engine.settings import ProcessorOverrides
from tgworkers.errors import ConfigError

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
RESERVED_BACKOFF: Final = frozenset({"BACKOFF_DEFAULT_MS", "BACKOFF_MAX_MS"})
PEERS: Final = ("payhub", "playhub", "campaigns", "escrow", "discovery", "price")


SCALARS: Final[dict[str, tuple[str, Callable[[str], Any]]]] = {
    "SERVICE_ID": ("service_id", text),
    "SERVICE_NAME": ("service_name", text),
    "PORT": ("port", int_in(0, 65535)),
    "LOG_LEVEL": ("log_level", choice("debug", "info", "warning", "error")),
    "LOG_FORMAT": ("log_format", choice("auto", "json", "console")),
    "CONSUMER_NAME": ("consumer_name", text),
    "SERVICE_JWT_ISSUER": ("service_jwt_issuer", text),
    "SERVICE_JWT_ALG": ("service_jwt_alg", choice("EdDSA", "Ed25519")),
    "QUEUE_PREFIX": ("queue_prefix", text),
    "DLQ_SUFFIX": ("dlq_suffix", text),
    "MAX_ATTEMPTS_DEFAULT": ("max_attempts_default", int_in(1, 1000)),
    "BACKOFF_DEFAULT_MS": ("backoff_default_ms", int_in(0)),
    "BACKOFF_MAX_MS": ("backoff_max_ms", int_in(0)),
    "WAIT_MAX_MS": ("wait_max_ms", int_in(0)),
    "VISIBILITY_TIMEOUT_MS": ("visibility_timeout_ms", int_in(500)),
    "MAX_DELIVERIES": ("max_deliveries", int_in(1, 1000)),
    # below a minute, a schedule tick's id could be forgotten before a slow replica fires it
    "DEDUPE_TTL_S": ("dedupe_ttl_s", int_in(60)),
    "MAX_PAYLOAD_BYTES": ("max_payload_bytes", int_in(16, 64 * 1024 * 1024)),
    "SHUTDOWN_GRACE_S": ("shutdown_grace_s", float_min(0)),
    "PROCESSORS": ("processors", csv),
    "SCHEDULES_TZ": ("schedules_tz", time_zone),
    "ORPHAN_HOLD_TTL_MS": ("orphan_hold_ttl_ms", int_in(0)),
    "CAMPAIGN_PROOF_DEADLINE_MS": ("campaign_proof_deadline_ms", int_in(0)),
    "CFB_PRICE_SYMBOLS": ("cfb_price_symbols", csv),
    "PRICE_BARS_RETENTION": ("price_bars_retention", int_in(1)),
    "CONFIG_URL": ("config_url", url("http", "https")),
    "CONFIG_FILE": ("config_file", text),
    "CONFIG_POLL_S": ("config_poll_s", float_min(0.05)),
    "CONFIG_WAIT_S": ("config_wait_s", float_min(0)),
    "PEER_CONNECT_TIMEOUT_S": ("peer_connect_timeout_s", float_min(0.01)),
    "PEER_TIMEOUT_S": ("peer_total_timeout_s", float_min(0.01)),
    "PAUSED_QUEUES": ("paused_queues", csv),
    "OTEL_SDK_DISABLED": ("otel_sdk_disabled", parse_bool),
    "OTEL_EXPORTER_OTLP_ENDPOINT": ("otel_exporter_otlp_endpoint", url("http", "https")),
    "OTEL_SERVICE_NAME": ("otel_service_name", text),
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": (
        "otel_exporter_otlp_traces_endpoint",
        url("http", "https"),
    ),
    "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": (
        "otel_exporter_otlp_metrics_endpoint",
        url("http", "https"),
    ),
    "OTEL_METRIC_EXPORT_INTERVAL": ("otel_metric_export_interval", int_in(1)),
    "TGW_HISTOGRAM_SAMPLES_PER_S": ("histogram_samples_per_s", int_in(0)),
    "TGW_PROCESS_SPANS_PER_S": ("process_spans_per_s", int_in(0)),
    "ADMIN_JWT_ISSUERS": ("admin_jwt_issuers", csv),
    "ADMIN_JWT_MAX_LIFETIME_S": ("admin_jwt_max_lifetime_s", int_in(1, 86_400)),
    "CONSOLE_SESSION_TTL_S": ("console_session_ttl_s", int_in(60, 7 * 86_400)),
    "TRACE_URL_TEMPLATE": ("trace_url_template", trace_template),
}
OTEL_SAMPLERS: Final = (
    "always_on", "always_off", "traceidratio",
    "parentbased_always_on", "parentbased_always_off", "parentbased_traceidratio",
)  # fmt: skip
OTEL_CHECKED: Final[dict[str, Callable[[str], Any]]] = {
    "OTEL_EXPORTER_OTLP_PROTOCOL": choice("http/protobuf", "http/json", "grpc"),
    "OTEL_TRACES_SAMPLER": choice(*OTEL_SAMPLERS),
    "OTEL_TRACES_SAMPLER_ARG": float_min(0),
    "OTEL_EXPORTER_OTLP_TIMEOUT": int_in(1),
}
"""Standard OpenTelemetry variables the SDK reads itself: checked, not stored."""
SECRETS: Final[dict[str, tuple[str, Callable[[str], Any]]]] = {
    "REDIS_URL": ("redis_url", redis_url),
    "SERVICE_JWT_PRIVATE_JWK": ("service_jwt_private_jwk", ed25519_jwk),
    "ADMIN_TOKEN": ("admin_token", admin_token),
    "ADMIN_READONLY_TOKEN": ("admin_readonly_token", admin_token),
    "ADMIN_TRUSTED_JWKS": ("admin_trusted_jwks", jwks),
    "METRICS_TOKEN": ("metrics_token", text),
    "CONSOLE_SESSION_SECRET": ("console_session_secret", admin_token),
}


def peer_values(env: Mapping[str, str]) -> tuple[dict[str, str], dict[str, float]]:
    urls: dict[str, str] = {}
    timeouts: dict[str, float] = {}
    for peer in PEERS:
        var = f"SVC_{peer.upper()}_URL"
        if raw := env.get(var, "").strip():
            urls[peer] = parse(var, raw, url("http", "https"), secret=False)
        tvar = f"SVC_{peer.upper()}_TIMEOUT_S"
        if traw := env.get(tvar, "").strip():
            timeouts[peer] = parse(tvar, traw, float_min(0.01), secret=False)
    return urls, timeouts


def override_for(name: str) -> tuple[str, str] | None:
    """(processor env name, field) for a per-processor variable, else None."""
    if name in RESERVED_BACKOFF or name == "MAX_ATTEMPTS_DEFAULT":
        return None
    for prefix, (suffix, field) in OVERRIDE_PREFIXES.items():
        if name.startswith(prefix) and name.endswith(suffix) and len(name) > len(prefix + suffix):
            return name[len(prefix) : len(name) - len(suffix) or None], field
    return None


def overrides(env: Mapping[str, str]) -> dict[str, ProcessorOverrides]:
    parsers: dict[str, Callable[[str], Any]] = {
        "concurrency": int_in(1, 10_000),
        "max_attempts": int_in(1, 1000),
        "backoff_ms": int_in(0),
        "timeout_s": float_min(0.001),
        "partitions": int_in(1, 1024),
    }
    collected: dict[str, dict[str, Any]] = {}
    for name, raw in env.items():
        if (hit := override_for(name)) is None or not raw.strip():
            continue
        proc, field = hit
        collected.setdefault(proc, {})[field] = parse(name, raw, parsers[field], secret=False)
    return {proc: ProcessorOverrides(**values) for proc, values in collected.items()}


RATE_PREFIX: Final = "RATE_"
RATE_SUFFIX: Final = "_PER_S"
QUEUE_RATE_PREFIX: Final = "RATE_QUEUE_"


def rate_for(name: str) -> tuple[str, str] | None:
    """("queue", processor env name) or ("peer", peer) for a `RATE_…_PER_S` variable."""
    if not (name.startswith(RATE_PREFIX) and name.endswith(RATE_SUFFIX)):
        return None
    if name.startswith(QUEUE_RATE_PREFIX) and len(name) > len(QUEUE_RATE_PREFIX + RATE_SUFFIX):
        return "queue", name[len(QUEUE_RATE_PREFIX) : -len(RATE_SUFFIX)]
    if len(name) > len(RATE_PREFIX + RATE_SUFFIX):
        return "peer", name[len(RATE_PREFIX) : -len(RATE_SUFFIX)].lower()
    return None


def rates(env: Mapping[str, str]) -> tuple[dict[str, float], dict[str, float]]:
    """(queue rates by processor env name, peer rates by peer) from `RATE_*_PER_S`."""
    queues: dict[str, float] = {}
    peers: dict[str, float] = {}
    for name, raw in sorted(env.items()):
        if (hit := rate_for(name)) is None or not raw.strip():
            continue
        scope, key = hit
        if scope == "peer" and key not in PEERS:
            known = ", ".join(p.upper() for p in PEERS)
            raise ConfigError(f"{name}: no peer {key.upper()}; known: {known}")
        per_s = parse(name, raw, float_min(0.001), secret=False)
        (queues if scope == "queue" else peers)[key] = per_s
    return queues, peers
