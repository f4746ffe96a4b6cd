"""Admin auth: only the admin token or a trusted Ed25519 service JWT gets in."""

from __future__ import annotations

import base64
import json
import time

import pytest
from structlog.testing import capture_logs
from tests.support.admin_http import (
    ADMIN,
    ADMIN_TOKEN,
    UNTRUSTED,
    admin_client,
    bearer,
    make_jwt,
    ops_settings,
)


def _b64(value: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


def _alg_none() -> str:
    now = int(time.time())
    claims = {"iss": "x", "sub": "x", "aud": "tgworkers-test", "iat": now, "exp": now + 60}
    return f"{_b64({'alg': 'none', 'kid': 'ops-1'})}.{_b64(claims)}."


BAD_HEADERS = {
    "missing": {},
    "wrong admin token": bearer("not-the-admin-token"),
    "not bearer": {"Authorization": f"Basic {ADMIN_TOKEN}"},
    "expired": bearer(make_jwt(iat=int(time.time()) - 600, exp=int(time.time()) - 300)),
    "wrong audience": bearer(make_jwt(aud="someone-else")),
    "no iss": bearer(make_jwt(iss=None)),
    "alg none": bearer(_alg_none()),
    "unknown kid": bearer(make_jwt(UNTRUSTED)),
    "untrusted key with trusted kid": bearer(make_jwt(UNTRUSTED, header={"kid": "ops-1"})),
    "garbage": bearer("a.b.c"),
}


@pytest.mark.parametrize("name", list(BAD_HEADERS))
async def test_bad_credentials_get_401_and_nothing_changes(redis, redis_url, registry, name):
    async with admin_client(ops_settings(redis_url), registry) as http:
        headers = BAD_HEADERS[name]
        paused = await http.post("/admin/v1/queues/test.work/pause", headers=headers)
        enqueued = await http.post(
            "/admin/v1/jobs/test.work", json={"payload": {"n": 1}}, headers=headers
        )
        listed = await http.get("/admin/v1/queues", headers=headers)
        page = await http.get("/ui/", headers=headers)
        changed = await http.post("/ui/queues/test.work/pause", headers=headers)
    assert [r.status_code for r in (paused, enqueued, listed, changed)] == [401] * 4
    assert page.status_code == 303 and page.headers["location"].startswith("/ui/login")
    assert paused.json() == {"error": "unauthorized"}
    assert await redis.dbsize() == 0


async def test_no_admin_credentials_configured_means_everything_is_refused(redis_url, registry):
    settings = ops_settings(redis_url, ADMIN_TOKEN="", ADMIN_TRUSTED_JWKS="")
    async with admin_client(settings, registry) as http:
        assert (await http.get("/admin/v1/queues", headers=ADMIN)).status_code == 401


@pytest.mark.parametrize("alg", ["Ed25519", "EdDSA"])
async def test_a_trusted_ed25519_jwt_is_accepted_and_the_call_is_audited(
    redis, redis_url, registry, alg
):
    token = make_jwt(alg=alg, sub="svc:escrow")
    async with admin_client(ops_settings(redis_url), registry) as http:
        with capture_logs() as logs:
            r = await http.post("/admin/v1/queues/test.work/pause", headers=bearer(token))
    assert r.status_code == 200 and r.json()["paused"] is True
    assert await redis.hget("{tgw}:control", "test.work") == b"paused"
    audits = [e for e in logs if e["event"] == "admin.audit"]
    assert audits == [{"event": "admin.audit", "log_level": "info", "who": "jwt",
                       "subject": "svc:escrow", "action": "pause", "queue": "test.work",
                       "target": "test.work", "via": "api"}]  # fmt: skip
    (entry,) = await redis.xrevrange("{tgw}:audit")
    assert entry[1][b"who"] == b"svc:escrow" and entry[1][b"action"] == b"pause"
    assert token not in repr(logs)


async def test_the_admin_token_is_accepted_and_never_logged(redis_url, registry):
    async with admin_client(ops_settings(redis_url), registry) as http:
        with capture_logs() as logs:
            r = await http.post("/admin/v1/queues/test.work/drain", json={}, headers=ADMIN)
    assert r.status_code == 200
    assert [e["who"] for e in logs if e["event"] == "admin.audit"] == ["token"]
    assert ADMIN_TOKEN not in repr(logs)
