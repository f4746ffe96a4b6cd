"""Admin API test support: keys, tokens and the app over `httpx.ASGITransport`."""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from joserfc import jwt
from joserfc.errors import SecurityWarning
from joserfc.jwk import OKPKey

from tests.conftest import make_settings
from tgworkers.bootstrap.layer_settings import http_settings
from tgworkers.config import Settings
from tgworkers.engine.ops import EngineServices
from tgworkers.engine.registry import Registry
from tgworkers.engine.runtime.worker import Worker
from tgworkers.http.app import create_app
from tgworkers.http.health import HealthProbe

ADMIN_TOKEN = "admin-token-for-tests-0123456789"  # noqa: S105 - a test value
SERVICE_NAME = "tgworkers-test"
TRUSTED = OKPKey.generate_key("Ed25519", parameters={"kid": "ops-1"})
UNTRUSTED = OKPKey.generate_key("Ed25519", parameters={"kid": "ops-2"})


def jwks() -> str:
    return json.dumps({"keys": [TRUSTED.as_dict(private=False)]})


def ops_settings(redis_url: str, **env: Any) -> Settings:
    base = {"ADMIN_TOKEN": ADMIN_TOKEN, "ADMIN_TRUSTED_JWKS": jwks(), "SERVICE_NAME": SERVICE_NAME,
            "ADMIN_JWT_ISSUERS": "playhub,escrow"}  # fmt: skip
    return make_settings(redis_url, **{**base, **env})


def make_jwt(
    key: OKPKey = TRUSTED, *, alg: str = "Ed25519", header: dict[str, Any] | None = None,
    **claims: Any,
) -> str:  # fmt: skip
    now = int(time.time())
    body = {"iss": "playhub", "sub": "svc:playhub", "aud": SERVICE_NAME, "iat": now,
            "exp": now + 300, "scope": "admin", **claims}  # fmt: skip
    body = {k: v for k, v in body.items() if v is not None}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SecurityWarning)
        return jwt.encode(
            {"alg": alg, "kid": key.kid, **(header or {})}, body, key, algorithms=[alg]
        )


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


ADMIN = bearer(ADMIN_TOKEN)


@asynccontextmanager
async def admin_client(
    settings: Settings, registry: Registry, worker: Worker | None = None
) -> AsyncIterator[httpx.AsyncClient]:
    """The app `run` serves, over ASGI, on real Redis; `worker` feeds the health probe."""
    own = worker is None
    worker = worker or Worker(
        settings=settings, registry=registry, processors=registry.select("test.work"),
        consumer="probe-only",
    )  # fmt: skip
    services = EngineServices.build(worker.redis, registry, settings)
    app = create_app(services, HealthProbe(worker), http_settings(settings))
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://tgw") as client:
            yield client
    finally:
        if own:
            await worker.redis.aclose()
            await worker.blocking.aclose()
