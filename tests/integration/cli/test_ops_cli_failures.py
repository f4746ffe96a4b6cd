"""Operational failures exit 1 with one line; no secret ever reaches any output."""

from __future__ import annotations

import json
import socket

import pytest
from tests.support.cli_runner import cli

CANARY_PASSWORD = "canary-redis-pw-8c1f"  # noqa: S105 - a canary, not a secret
CANARY_TOKEN = "canary-admin-token-5d2e-of-24-chars"  # noqa: S105 - a canary
CANARY_METRICS = "canary-metrics-token-77aa"
CANARY_JWK_D = "canaryPrivateScalar0123456789abcdefghijk"


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _secret_env() -> dict[str, str]:
    return {"ADMIN_TOKEN": CANARY_TOKEN, "METRICS_TOKEN": CANARY_METRICS}


@pytest.mark.parametrize(
    "args",
    [
        ("stats", "--json"),
        ("enqueue", "test.work", '{"n": 1}'),
        ("pause", "test.work"),
        ("drain", "test.work", "--yes"),
        ("dlq", "list", "test.work"),
        ("dlq", "export", "test.work"),
        ("backfill", "test.work", "--file", "-"),
        ("schedules",),
    ],
)
async def test_redis_down_exits_1_with_one_line_and_no_password(args):
    url = f"redis://:{CANARY_PASSWORD}@127.0.0.1:{closed_port()}/0"
    result = await cli(url, *args, stdin=b'{"n": 1}\n', env=_secret_env())
    assert result.rc == 1
    assert len(result.err_lines) == 1, result.err
    assert result.err_lines[0].startswith("tgworkers: cannot reach Redis at redis://:***@")
    for secret in (CANARY_PASSWORD, CANARY_TOKEN, CANARY_METRICS):
        assert secret not in result.err and secret not in result.out
    assert "Traceback" not in result.err


async def test_a_bad_trusted_jwks_stops_run_with_exit_2_naming_the_variable_not_its_value(
    redis_url,
):
    key = {"kty": "OKP", "crv": "X25519", "x": "abc", "d": CANARY_JWK_D}
    jwks = json.dumps({"keys": [key]})
    result = await cli(
        redis_url, "run", "--processors", "test.work",
        env={"PORT": "0", "ADMIN_TRUSTED_JWKS": jwks, **_secret_env()},
    )  # fmt: skip
    assert result.rc == 2
    assert len(result.err_lines) == 1 and "ADMIN_TRUSTED_JWKS" in result.err
    assert CANARY_JWK_D not in result.err + result.out and "Traceback" not in result.err


async def test_a_malformed_redis_url_is_a_config_error_without_the_password(redis_url):
    result = await cli(f"http://:{CANARY_PASSWORD}@host/0", "stats")
    assert result.rc == 2 and "REDIS_URL" in result.err
    assert CANARY_PASSWORD not in result.err + result.out


async def test_a_query_string_password_is_never_printed_when_redis_is_down():
    url = f"redis://127.0.0.1:{closed_port()}/0?password={CANARY_PASSWORD}"
    result = await cli(url, "stats", "--json")
    assert result.rc == 1 and "password=***" in result.err
    assert CANARY_PASSWORD not in result.err + result.out


@pytest.mark.parametrize("name", ["%70assword", "p%61ssword", "%70%61ssword"])
async def test_a_percent_encoded_password_parameter_is_never_printed(name):
    # redis-py decodes the parameter name, so `%70assword` is a password to it
    url = f"redis://127.0.0.1:{closed_port()}/0?{name}={CANARY_PASSWORD}"
    result = await cli(url, "stats", "--json")
    assert result.rc == 1 and "***" in result.err
    assert CANARY_PASSWORD not in result.err + result.out


async def test_enqueue_with_a_wrong_field_names_the_expected_fields(redis_url):
    result = await cli(redis_url, "enqueue", "test.slow", '{"n": "seven"}')
    assert result.rc == 2 and len(result.err_lines) == 1
    assert "got `str` at $.n" in result.err and "expected fields: n (int)" in result.err
    assert "Traceback" not in result.err


async def test_cli_changes_are_in_the_audit_stream(redis, redis_url):
    assert (await cli(redis_url, "pause", "test.work")).rc == 0
    (entry,) = await redis.xrevrange("{tgw}:audit")
    fields = entry[1]
    assert (fields[b"via"], fields[b"action"], fields[b"target"]) == (
        b"cli",
        b"pause",
        b"test.work",
    )
    assert fields[b"who"].startswith(b"cli:")


async def test_a_short_admin_token_stops_run_with_exit_2_without_echoing_it(redis_url):
    result = await cli(redis_url, "run", env={"PORT": "0", "ADMIN_TOKEN": "change-me"})
    assert result.rc == 2 and len(result.err_lines) == 1
    assert "ADMIN_TOKEN: expected at least 24 characters" in result.err
    assert "change-me" not in result.err + result.out and "Traceback" not in result.err
