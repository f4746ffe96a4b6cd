"""Credentials stay out of output: every Redis URL form, short admin tokens, compose.yaml."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import structlog

from tgworkers.config import load_settings
from tgworkers.errors import ConfigError
from tgworkers.logs import configure_logging
from tgworkers.redact import redact_url

CANARY = "Pa55-canary-7f3e"
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "url",
    [
        f"redis://127.0.0.1:6379/0?password={CANARY}",
        f"redis://h:6379/0?db=1&password={CANARY}&socket_timeout=3",
        f"redis://user:{CANARY}@h:6379/0",
        f"redis://:{CANARY}@h:6379/0",
        f"redis://{CANARY}@h:6379/0",
        f"rediss://default:{CANARY}@[::1]:6380/2",
        f"unix://:{CANARY}@/run/redis.sock?db=0",
        f"unix:///run/redis.sock?password={CANARY}",
        f"redis://h/0?ssl_password={CANARY}",
        f"redis+cluster://:{CANARY}@h1:7000?cluster=true",
        f"redis://h/0#{CANARY}",
    ],
)
def test_every_credential_form_is_masked_in_urls_and_log_lines(url):
    masked = redact_url(url)
    assert CANARY not in masked and "***" in masked
    out = io.StringIO()
    configure_logging("info", fmt="json", stream=out)
    structlog.get_logger("t").warning("redis.down", error=f"cannot reach {url} now", url=url)
    line = json.loads(out.getvalue().splitlines()[-1])
    assert CANARY not in out.getvalue() and line["event"] == "redis.down"


def test_redaction_keeps_what_an_operator_needs_to_find_the_server():
    assert redact_url("redis://h:6379/0?password=x&db=1") == "redis://h:6379/0?password=***&db=1"
    assert redact_url("redis://u:p@h:1/0") == "redis://u:***@h:1/0"
    assert redact_url("redis://h:1/0") == "redis://h:1/0"


def test_stats_settings_redact_a_query_password():
    settings = load_settings({"REDIS_URL": f"redis://127.0.0.1:1/0?password={CANARY}"})
    assert CANARY not in settings.redacted_redis_url()


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"ADMIN_TOKEN": "change-me"}, "ADMIN_TOKEN: expected at least 24 characters"),
        ({"ADMIN_READONLY_TOKEN": "short"}, "ADMIN_READONLY_TOKEN: expected at least 24"),
        ({"ADMIN_TOKEN": "x" * 30, "ADMIN_READONLY_TOKEN": "x" * 30}, "must differ"),
        ({"ADMIN_TRUSTED_JWKS": '{"keys": [{"kty": "OKP"}]}'}, "ADMIN_JWT_ISSUERS: required"),
        ({"ADMIN_JWT_MAX_LIFETIME_S": "0"}, "ADMIN_JWT_MAX_LIFETIME_S"),
        ({"TRACE_URL_TEMPLATE": "https://grafana/x"}, "{traceId}"),
    ],
)
def test_weak_or_inconsistent_admin_settings_stop_start_up(env, says):
    with pytest.raises(ConfigError) as caught:
        load_settings(env)
    assert says in str(caught.value)
    assert "change-me" not in str(caught.value)


def test_compose_ships_no_default_admin_token():
    compose = (ROOT / "compose.yaml").read_text()
    assert "change-me" not in compose
    assert "ADMIN_TOKEN: ${ADMIN_TOKEN:?" in compose
