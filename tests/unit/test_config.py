"""`load_settings`: every variable, good and bad values, and the exact messages."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tgworkers import config
from tgworkers.config import (
    SECRET_VARIABLES,
    ProcessorOverrides,
    Settings,
    check_processor_names,
    load_settings,
    split_cluster_url,
    variable_kind,
)
from tgworkers.errors import ConfigError

# A real Ed25519 private JWK (RFC 8037 appendix A.1 test key), and an RSA public one.
ED25519_JWK = json.dumps({
    "kty": "OKP", "crv": "Ed25519",
    "d": "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A",
    "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo",
})  # fmt: skip
RSA_JWK = json.dumps(
    {"kty": "RSA", "n": "sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri", "e": "AQAB"}
)
JWKS = json.dumps({"keys": [{"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPa"}]})


def _value(settings: Settings, path: str) -> Any:
    value: Any = settings
    for part in path.split("."):
        value = value[part] if isinstance(value, dict) else getattr(value, part)
    return value.reveal() if hasattr(value, "reveal") else value


GOOD: list[tuple[dict[str, str], str, Any]] = [
    # identity and environment
    ({}, "service_id", "tgworkers"),
    ({"SERVICE_ID": " workers-1 "}, "service_id", "workers-1"),
    ({"SERVICE_NAME": "tg-workers"}, "service_name", "tg-workers"),
    ({}, "environment", "development"),
    ({"NODE_ENV": "production"}, "environment", "production"),
    ({"TGW_ENV": "staging"}, "environment", "staging"),
    ({"NODE_ENV": "production", "TGW_ENV": "staging"}, "environment", "production"),
    ({"PORT": "8080"}, "port", 8080),
    ({"PORT": "0"}, "port", 0),
    ({}, "port", None),
    ({"LOG_LEVEL": "DEBUG"}, "log_level", "debug"),
    ({"LOG_LEVEL": "warning"}, "log_level", "warning"),
    ({"LOG_FORMAT": "json"}, "log_format", "json"),
    ({"CONSUMER_NAME": "pod-7"}, "consumer_name", "pod-7"),
    # Redis, including the cluster forms
    ({}, "redis_url", "redis://127.0.0.1:6379/0"),
    ({"REDIS_URL": "redis://:pw@h:6380/2"}, "redis_url", "redis://:pw@h:6380/2"),
    ({"REDIS_URL": "rediss://h:6380"}, "redis_url", "rediss://h:6380"),
    ({"REDIS_URL": "unix:///tmp/redis.sock"}, "redis_url", "unix:///tmp/redis.sock"),
    ({"REDIS_URL": "redis://h:6379"}, "redis_cluster", False),
    ({"REDIS_URL": "redis+cluster://h:7000"}, "redis_url", "redis://h:7000"),
    ({"REDIS_URL": "redis+cluster://h:7000"}, "redis_cluster", True),
    ({"REDIS_URL": "rediss+cluster://h:7000"}, "redis_url", "rediss://h:7000"),
    ({"REDIS_URL": "redis://h:7000/0?cluster=true"}, "redis_cluster", True),
    ({"REDIS_URL": "redis://h:7000/0?cluster=true&x=1"}, "redis_url", "redis://h:7000/0?x=1"),
    ({"REDIS_URL": "redis://h:7000/0?cluster=false"}, "redis_cluster", False),
    # peers and the service JWT
    ({"SVC_PAYHUB_URL": "http://payhub:8080/"}, "peer_urls.payhub", "http://payhub:8080"),
    ({"SVC_PRICE_URL": "https://price"}, "peer_urls.price", "https://price"),
    ({"SVC_ESCROW_TIMEOUT_S": "2.5"}, "peer_timeout_s.escrow", 2.5),
    ({"PEER_TIMEOUT_S": "4"}, "peer_total_timeout_s", 4.0),
    ({"PEER_CONNECT_TIMEOUT_S": "0.5"}, "peer_connect_timeout_s", 0.5),
    ({"SERVICE_JWT_PRIVATE_JWK": ED25519_JWK}, "service_jwt_private_jwk", ED25519_JWK),
    ({"SERVICE_JWT_ISSUER": "workers"}, "service_jwt_issuer", "workers"),
    ({}, "service_jwt_alg", "EdDSA"),
    ({"SERVICE_JWT_ALG": "ed25519"}, "service_jwt_alg", "Ed25519"),
    # queues and retry
    ({}, "queue_prefix", "tgw"),
    ({"QUEUE_PREFIX": "tgw-stage"}, "queue_prefix", "tgw-stage"),
    ({}, "dlq_suffix", ":dlq"),
    ({"DLQ_SUFFIX": ":dead"}, "dlq_suffix", ":dead"),
    ({}, "max_attempts_default", 10),
    ({"MAX_ATTEMPTS_DEFAULT": "3"}, "max_attempts_default", 3),
    ({}, "backoff_default_ms", 1000),
    ({"BACKOFF_DEFAULT_MS": "1_500"}, "backoff_default_ms", 1500),
    ({}, "backoff_max_ms", 300_000),
    ({"BACKOFF_MAX_MS": "60000"}, "backoff_max_ms", 60_000),
    ({}, "visibility_timeout_ms", 30_000),
    ({"VISIBILITY_TIMEOUT_MS": "500"}, "visibility_timeout_ms", 500),
    ({}, "max_deliveries_effective", 10),
    ({"MAX_DELIVERIES": "4"}, "max_deliveries_effective", 4),
    ({}, "dedupe_ttl_s", 86_400),
    ({"DEDUPE_TTL_S": "60"}, "dedupe_ttl_s", 60),
    ({}, "max_payload_bytes", 65_536),
    ({"MAX_PAYLOAD_BYTES": "1024"}, "max_payload_bytes", 1024),
    ({}, "shutdown_grace_s", 25.0),
    ({"SHUTDOWN_GRACE_S": "2.5"}, "shutdown_grace_s", 2.5),
    # processors, flags, schedules
    ({}, "processors", None),
    ({"PROCESSORS": "cfb.settle, escrow,"}, "processors", ("cfb.settle", "escrow")),
    ({"ENABLE_LEDGER_RECALC": "yes"}, "enable_flags.ENABLE_LEDGER_RECALC", True),
    ({"ENABLE_DLQ_REPLAYER": "0"}, "enable_flags.ENABLE_DLQ_REPLAYER", False),
    ({"ENABLE_ESCROW": "Off"}, "enable_flags.ENABLE_ESCROW", False),
    ({"CRON_LEDGER_RECALC": "*/15 * * * *"}, "crons.CRON_LEDGER_RECALC", "*/15 * * * *"),
    ({"CRON_CFB_SETTLE_SWEEP": " 0 * * * * "}, "crons.CRON_CFB_SETTLE_SWEEP", "0 * * * *"),
    ({"CRON_CFB_SETTLE_SWEEP": ""}, "crons", {}),
    ({}, "schedules_tz", "UTC"),
    ({"SCHEDULES_TZ": "Europe/Berlin"}, "schedules_tz", "Europe/Berlin"),
    ({"PAUSED_QUEUES": "a,b"}, "paused_queues", ("a", "b")),
    # per-processor overrides
    ({"CONCURRENCY_CFB_SETTLE": "4"}, "overrides.CFB_SETTLE.concurrency", 4),
    ({"MAX_ATTEMPTS_ESCROW": "2"}, "overrides.ESCROW.max_attempts", 2),
    ({"BACKOFF_ESCROW_MS": "50"}, "overrides.ESCROW.backoff_ms", 50),
    ({"TIMEOUT_GAMES_SETTLEMENT_S": "1.5"}, "overrides.GAMES_SETTLEMENT.timeout_s", 1.5),
    ({"PARTITIONS_CFB_SETTLE": "8"}, "overrides.CFB_SETTLE.partitions", 8),
    ({"BACKOFF_DEFAULT_MS": "5"}, "overrides", {}),
    # jobs
    ({}, "orphan_hold_ttl_ms", 3_600_000),
    ({"ORPHAN_HOLD_TTL_MS": "60000"}, "orphan_hold_ttl_ms", 60_000),
    ({}, "campaign_proof_deadline_ms", 86_400_000),
    ({"CAMPAIGN_PROOF_DEADLINE_MS": "1000"}, "campaign_proof_deadline_ms", 1000),
    ({}, "cfb_price_symbols", ("TON-USD",)),
    ({"CFB_PRICE_SYMBOLS": "TON-USD,BTC-USD"}, "cfb_price_symbols", ("TON-USD", "BTC-USD")),
    ({}, "price_bars_retention", 1440),
    ({"PRICE_BARS_RETENTION": "60"}, "price_bars_retention", 60),
    # operations
    ({"ADMIN_TOKEN": "s3cret-token-of-24-chars-x"}, "admin_token", "s3cret-token-of-24-chars-x"),
    ({"ADMIN_TRUSTED_JWKS": JWKS, "ADMIN_JWT_ISSUERS": "playhub"}, "admin_trusted_jwks", JWKS),
    ({"ADMIN_JWT_ISSUERS": "playhub, escrow"}, "admin_jwt_issuers", ("playhub", "escrow")),
    ({}, "admin_jwt_max_lifetime_s", 600),
    ({"METRICS_TOKEN": "m3trics"}, "metrics_token", "m3trics"),
    (
        {"CONFIG_URL": "http://config:8080/tgworkers.json"},
        "config_url",
        "http://config:8080/tgworkers.json",
    ),
    ({"CONFIG_FILE": "/etc/tgworkers/config.json"}, "config_file", "/etc/tgworkers/config.json"),
    ({}, "config_poll_s", 15.0),
    ({"CONFIG_POLL_S": "0.5"}, "config_poll_s", 0.5),
    # OpenTelemetry
    ({"OTEL_SDK_DISABLED": "true"}, "otel_sdk_disabled", True),
    (
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://otel:4318"},
        "otel_exporter_otlp_endpoint",
        "http://otel:4318",
    ),
    ({"OTEL_SERVICE_NAME": "tgworkers"}, "otel_service_name", "tgworkers"),
    (
        {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.1"},
        "otel_sdk_disabled",
        False,
    ),
]


@pytest.mark.parametrize(
    ("env", "path", "expected"), GOOD, ids=[f"{g[1]}-{i}" for i, g in enumerate(GOOD)]
)
def test_good_value_is_parsed(env: dict[str, str], path: str, expected: Any) -> None:
    assert _value(load_settings(env), path) == expected


BAD: list[tuple[dict[str, str], str | None]] = [
    ({"SERVICE_ID": "  "}, None),  # blank means "unset": the default stays
    ({"PORT": "http"}, "PORT: expected an integer, got 'http'"),
    ({"PORT": "70000"}, "PORT: expected an integer between 0 and 65535, got 70000"),
    ({"LOG_LEVEL": "loud"}, "LOG_LEVEL: expected one of debug, info, warning, error, got 'loud'"),
    ({"LOG_FORMAT": "xml"}, "LOG_FORMAT: expected one of auto, json, console, got 'xml'"),
    (
        {"REDIS_URL": "http://pw@h"},
        "REDIS_URL: expected redis://host:port/db, rediss://…, unix:///path.sock, "
        "or a cluster: redis+cluster://host:port (or ?cluster=true)",
    ),
    (
        {"REDIS_URL": "redis://h?cluster=maybe"},
        "REDIS_URL: expected cluster=true or cluster=false in the query",
    ),
    (
        {"SVC_PAYHUB_URL": "payhub:8080"},
        "SVC_PAYHUB_URL: expected a URL starting with http or https://",
    ),
    ({"SVC_PRICE_TIMEOUT_S": "fast"}, "SVC_PRICE_TIMEOUT_S: expected a number, got 'fast'"),
    ({"PEER_TIMEOUT_S": "0"}, "PEER_TIMEOUT_S: expected a number >= 0.01, got 0"),
    ({"SERVICE_JWT_ALG": "RS256"}, "SERVICE_JWT_ALG: expected one of EdDSA, Ed25519, got 'RS256'"),
    (
        {"SERVICE_JWT_PRIVATE_JWK": "not json"},
        'SERVICE_JWT_PRIVATE_JWK: expected a private Ed25519 JWK: {"kty":"OKP","crv":"Ed25519",'
        '"x":…,"d":…}; it is not JSON',
    ),
    (
        {"SERVICE_JWT_PRIVATE_JWK": RSA_JWK},
        'SERVICE_JWT_PRIVATE_JWK: expected a private Ed25519 JWK: {"kty":"OKP","crv":"Ed25519",'
        '"x":…,"d":…}; it is not an Ed25519 key',
    ),
    (
        {"SERVICE_JWT_PRIVATE_JWK": json.dumps({"kty": "OKP", "crv": "Ed25519", "x": "abc"})},
        'SERVICE_JWT_PRIVATE_JWK: expected a private Ed25519 JWK: {"kty":"OKP","crv":"Ed25519",'
        '"x":…,"d":…}; x and d must be 32-byte base64url values',
    ),
    ({"QUEUE_PREFIX": ""}, None),  # empty means "unset": the default stays
    (
        {"MAX_ATTEMPTS_DEFAULT": "0"},
        "MAX_ATTEMPTS_DEFAULT: expected an integer between 1 and 1000, got 0",
    ),
    ({"BACKOFF_DEFAULT_MS": "soon"}, "BACKOFF_DEFAULT_MS: expected an integer, got 'soon'"),
    ({"BACKOFF_DEFAULT_MS": "-1"}, "BACKOFF_DEFAULT_MS: expected an integer >= 0, got -1"),
    (
        {"BACKOFF_DEFAULT_MS": "5000", "BACKOFF_MAX_MS": "100"},
        "BACKOFF_MAX_MS: must be >= BACKOFF_DEFAULT_MS",
    ),
    (
        {"VISIBILITY_TIMEOUT_MS": "100"},
        "VISIBILITY_TIMEOUT_MS: expected an integer >= 500, got 100",
    ),
    ({"MAX_DELIVERIES": "1.5"}, "MAX_DELIVERIES: expected an integer, got '1.5'"),
    ({"DEDUPE_TTL_S": "a day"}, "DEDUPE_TTL_S: expected an integer, got 'a day'"),
    # below a minute a schedule tick could fire twice (its id forgotten too soon)
    ({"DEDUPE_TTL_S": "0"}, "DEDUPE_TTL_S: expected an integer >= 60, got 0"),
    (
        {"MAX_PAYLOAD_BYTES": "8"},
        "MAX_PAYLOAD_BYTES: expected an integer between 16 and 67108864, got 8",
    ),
    ({"SHUTDOWN_GRACE_S": "-2"}, "SHUTDOWN_GRACE_S: expected a number >= 0, got -2"),
    (
        {"SCHEDULES_TZ": "Mars/Olympus"},
        "SCHEDULES_TZ: expected an IANA time zone such as UTC or Europe/Berlin, got 'Mars/Olympus'",
    ),
    ({"ENABLE_ESCROW": "maybe"}, "ENABLE_ESCROW: expected true or false, got 'maybe'"),
    ({"CRON_LEDGER_RECALC": "every minute"}, "CRON_LEDGER_RECALC: "),
    ({"CRON_CFB_SETTLE_SWEEP": "61 * * * *"}, "CRON_CFB_SETTLE_SWEEP: "),
    (
        {"CONCURRENCY_CFB_SETTLE": "0"},
        "CONCURRENCY_CFB_SETTLE: expected an integer between 1 and 10000, got 0",
    ),
    ({"MAX_ATTEMPTS_ESCROW": "x"}, "MAX_ATTEMPTS_ESCROW: expected an integer, got 'x'"),
    ({"BACKOFF_ESCROW_MS": "-5"}, "BACKOFF_ESCROW_MS: expected an integer >= 0, got -5"),
    ({"TIMEOUT_ESCROW_S": "0"}, "TIMEOUT_ESCROW_S: expected a number >= 0.001, got 0"),
    (
        {"PARTITIONS_ESCROW": "2000"},
        "PARTITIONS_ESCROW: expected an integer between 1 and 1024, got 2000",
    ),
    ({"ORPHAN_HOLD_TTL_MS": "1h"}, "ORPHAN_HOLD_TTL_MS: expected an integer, got '1h'"),
    (
        {"CAMPAIGN_PROOF_DEADLINE_MS": "-1"},
        "CAMPAIGN_PROOF_DEADLINE_MS: expected an integer >= 0, got -1",
    ),
    ({"PRICE_BARS_RETENTION": "0"}, "PRICE_BARS_RETENTION: expected an integer >= 1, got 0"),
    (
        {"ADMIN_TRUSTED_JWKS": "[]"},
        'ADMIN_TRUSTED_JWKS: expected a JWKS JSON document {"keys": [...]} with at least one key',
    ),
    (
        {"ADMIN_TRUSTED_JWKS": "{"},
        'ADMIN_TRUSTED_JWKS: expected a JWKS JSON document {"keys": [...]}; it is not JSON',
    ),
    ({"CONFIG_URL": "config.local/x"}, "CONFIG_URL: expected a URL starting with http or https://"),
    ({"CONFIG_POLL_S": "0"}, "CONFIG_POLL_S: expected a number >= 0.05, got 0"),
    (
        {"CONFIG_URL": "http://c/x", "CONFIG_FILE": "/c.json"},
        "CONFIG_FILE: set either CONFIG_URL or CONFIG_FILE, not both",
    ),
    ({"OTEL_SDK_DISABLED": "perhaps"}, "OTEL_SDK_DISABLED: expected true or false, got 'perhaps'"),
    (
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "otel:4318"},
        "OTEL_EXPORTER_OTLP_ENDPOINT: expected a URL starting with http or https://",
    ),
    (
        {"OTEL_EXPORTER_OTLP_PROTOCOL": "udp"},
        "OTEL_EXPORTER_OTLP_PROTOCOL: expected one of http/protobuf, http/json, grpc, got 'udp'",
    ),
    ({"OTEL_TRACES_SAMPLER_ARG": "half"}, "OTEL_TRACES_SAMPLER_ARG: expected a number, got 'half'"),
]


@pytest.mark.parametrize(("env", "message"), BAD, ids=[next(iter(b[0])) for b in BAD])
def test_bad_value_stops_with_one_line_naming_the_variable(
    env: dict[str, str], message: str | None
) -> None:
    if message is None:
        load_settings(env)
        return
    with pytest.raises(ConfigError) as caught:
        load_settings(env)
    text = str(caught.value)
    assert "\n" not in text
    if message.endswith(": "):  # schedule syntax messages belong to the scheduler's parser
        assert text.startswith(message)
        assert env[next(iter(env))] in text or "cron" in text
    else:
        assert text == message


SECRET_VALUES = [
    ("SERVICE_JWT_PRIVATE_JWK", '{"kty":"OKP","crv":"X25519","d":"TOPSECRETd","x":"abc"}'),
    ("SERVICE_JWT_PRIVATE_JWK", "TOPSECRET not json"),
    ("REDIS_URL", "http://user:TOPSECRET@h:6379"),
    ("REDIS_URL", "redis://:TOPSECRET@h?cluster=TOPSECRET"),
    ("ADMIN_TRUSTED_JWKS", '{"TOPSECRET": 1}'),
]


@pytest.mark.parametrize(("name", "value"), SECRET_VALUES)
def test_message_about_a_secret_never_holds_its_value(name: str, value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({name: value})
    assert str(caught.value).startswith(f"{name}: ")
    assert "TOPSECRET" not in str(caught.value)
    assert caught.value.__cause__ is None


def test_secrets_are_wrapped_so_no_repr_shows_them() -> None:
    env = {
        "SERVICE_JWT_PRIVATE_JWK": ED25519_JWK, "ADMIN_TOKEN": "tok-TOPSECRET-long-enough-24",
        "METRICS_TOKEN": "met-TOPSECRET", "REDIS_URL": "redis://:TOPSECRET@h:6379/0",
        "ADMIN_TRUSTED_JWKS": JWKS, "ADMIN_READONLY_TOKEN": "ro-TOPSECRET-long-enough-24",
        "CONSOLE_SESSION_SECRET": "cs-TOPSECRET-long-enough-24",
    }  # fmt: skip
    settings = load_settings({**env, "ADMIN_JWT_ISSUERS": "playhub"})
    text = repr(settings) + str(settings)
    assert "TOPSECRET" not in text
    assert "nWGxne" not in text
    assert settings.redacted_redis_url() == "redis://:***@h:6379/0"
    assert set(SECRET_VARIABLES) == set(env)


def test_dotenv_is_read_and_the_real_environment_wins(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text(
        "QUEUE_PREFIX=from-dotenv\nMAX_ATTEMPTS_DEFAULT=4\nNODE_ENV=production\n"
        "# a comment\nCONCURRENCY_ESCROW=3\n"
    )
    settings = load_settings({"MAX_ATTEMPTS_DEFAULT": "7"}, dotenv)
    assert settings.queue_prefix == "from-dotenv"
    assert settings.max_attempts_default == 7
    assert settings.environment == "production"
    assert settings.processor_overrides("ESCROW") == ProcessorOverrides(concurrency=3)


def test_missing_dotenv_is_fine_and_a_bad_value_in_it_names_the_variable(tmp_path: Path) -> None:
    assert load_settings({}, tmp_path / "absent.env").queue_prefix == "tgw"
    dotenv = tmp_path / ".env"
    dotenv.write_text("BACKOFF_MAX_MS=later\n")
    with pytest.raises(ConfigError, match=r"^BACKOFF_MAX_MS: expected an integer, got 'later'$"):
        load_settings({}, dotenv)


def test_retry_policy_reads_defaults_and_per_processor_overrides() -> None:
    settings = load_settings({
        "MAX_ATTEMPTS_DEFAULT": "5", "BACKOFF_DEFAULT_MS": "100", "BACKOFF_MAX_MS": "900",
        "MAX_ATTEMPTS_ESCROW": "2", "BACKOFF_ESCROW_MS": "300",
    })  # fmt: skip
    assert (
        settings.retry_policy("CFB_SETTLE").max_attempts,
        settings.retry_policy("CFB_SETTLE").base_ms,
    ) == (5, 100)
    escrow = settings.retry_policy("ESCROW")
    assert (escrow.max_attempts, escrow.base_ms, escrow.cap_ms) == (2, 300, 900)


def test_override_for_an_unknown_processor_names_the_variable() -> None:
    settings = load_settings({"CONCURRENCY_CFB_SETLE": "4"})
    with pytest.raises(ConfigError) as caught:
        check_processor_names(settings, {"CFB_SETTLE", "ESCROW"})
    assert str(caught.value) == (
        "CONCURRENCY_CFB_SETLE: no processor CFB_SETLE; known: CFB_SETTLE, ESCROW"
    )
    check_processor_names(load_settings({"TIMEOUT_ESCROW_S": "2"}), {"ESCROW"})


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("redis://h:6379/0", ("redis://h:6379/0", False)),
        ("redis+cluster://a:7000,b:7001", ("redis://a:7000,b:7001", True)),
        ("rediss://h/0?cluster=1&ssl_cert_reqs=none", ("rediss://h/0?ssl_cert_reqs=none", True)),
        ("unix:///run/redis.sock?db=1", ("unix:///run/redis.sock?db=1", False)),
    ],
)
def test_cluster_form_is_recognised_and_stripped(url: str, expected: tuple[str, bool]) -> None:
    assert split_cluster_url(url) == expected


KINDS = [
    ("CONCURRENCY_CFB_SETTLE", "dynamic"),
    ("MAX_ATTEMPTS_ESCROW", "dynamic"),
    ("BACKOFF_ESCROW_MS", "dynamic"),
    ("TIMEOUT_ESCROW_S", "dynamic"),
    ("MAX_ATTEMPTS_DEFAULT", "dynamic"),
    ("BACKOFF_DEFAULT_MS", "dynamic"),
    ("BACKOFF_MAX_MS", "dynamic"),
    ("ENABLE_ESCROW", "dynamic"),
    ("CRON_LEDGER_RECALC", "dynamic"),
    ("PROCESSORS", "dynamic"),
    ("PAUSED_QUEUES", "dynamic"),
    ("SCHEDULES_TZ", "dynamic"),
    ("PARTITIONS_ESCROW", "static"),
    ("QUEUE_PREFIX", "static"),
    ("PORT", "static"),
    ("VISIBILITY_TIMEOUT_MS", "static"),
    ("CONFIG_POLL_S", "static"),
    ("NODE_ENV", "static"),
    ("SVC_PAYHUB_URL", "static"),
    ("OTEL_SERVICE_NAME", "static"),
    ("REDIS_URL", "secret"),
    ("SERVICE_JWT_PRIVATE_JWK", "secret"),
    ("ADMIN_TOKEN", "secret"),
    ("METRICS_TOKEN", "secret"),
    ("ADMIN_TRUSTED_JWKS", "secret"),
    ("RATE_PLAYHUB_PER_S", "dynamic"),
    ("RATE_QUEUE_CFB_SETTLE_PER_S", "dynamic"),
    ("CONCURENCY_ESCROW", "unknown"),
    ("version", "unknown"),
]


@pytest.mark.parametrize(("name", "kind"), KINDS)
def test_variable_kind_decides_what_a_reload_document_may_change(name: str, kind: str) -> None:
    assert variable_kind(name) == kind


def test_docs_list_every_variable() -> None:
    docs = (Path(__file__).resolve().parents[2] / "docs" / "configuration.md").read_text()
    names = {*config._SCALARS, *config._SECRETS, *config._OTEL_CHECKED, "NODE_ENV", "TGW_ENV"}
    names |= {f"{prefix}<P>{suffix}" for prefix, (suffix, _) in config.OVERRIDE_PREFIXES.items()}
    names |= {"RATE_QUEUE_<P>_PER_S", "RATE_<PEER>_PER_S"}
    missing = sorted(n for n in names if f"`{n}`" not in docs)
    assert missing == []


def test_rate_limits_are_read_per_queue_and_per_peer() -> None:
    env = {"RATE_PLAYHUB_PER_S": "50", "RATE_QUEUE_CFB_SETTLE_PER_S": "2.5"}
    s = load_settings(env, None)
    assert s.peer_rates == {"playhub": 50.0}
    assert s.queue_rates == {"CFB_SETTLE": 2.5}


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"RATE_PLAYHUB2_PER_S": "5"}, "RATE_PLAYHUB2_PER_S: no peer PLAYHUB2; known: PAYHUB"),
        ({"RATE_PLAYHUB_PER_S": "fast"}, "RATE_PLAYHUB_PER_S: expected a number"),
        ({"RATE_QUEUE_CFB_SETTLE_PER_S": "0"}, "RATE_QUEUE_CFB_SETTLE_PER_S: expected a number"),
    ],
)
def test_a_bad_rate_limit_names_its_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(env, None)
    assert str(err.value).startswith(message)


def test_a_queue_rate_for_an_unknown_processor_names_the_variable() -> None:
    s = load_settings({"RATE_QUEUE_CFB_SETLE_PER_S": "5"}, None)
    with pytest.raises(ConfigError, match="RATE_QUEUE_CFB_SETLE_PER_S: no processor CFB_SETLE"):
        check_processor_names(s, {"CFB_SETTLE"})
