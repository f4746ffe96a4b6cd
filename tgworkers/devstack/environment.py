"""The variables the `dev` command runs the workers with.

`dev` is `run` with a generated environment: every processor switched on, short
schedules so something happens every few seconds, quick retries so a failing
call visibly recovers, and a short shutdown grace so Ctrl-C is prompt. Values a
newcomer may want to change (log level, schedules, retry policy) are defaults the
real environment overrides; values that must match what `dev` started (Redis,
the stub peers' URLs, the service key, the port, the admin token) are forced.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from typing import Final

from joserfc.jwk import OKPKey

from tgworkers.devstack.fake_peers import PEERS

ISSUER: Final = "tgworkers-dev"
QUEUE_PREFIX: Final = "tgwdev"
"""`dev`'s own queue prefix: on a Redis it did not start, it never touches real queues."""

DEV_DEFAULTS: Final[Mapping[str, str]] = {
    "NODE_ENV": "development",
    "LOG_LEVEL": "warning",
    "ENABLE_CFB_SETTLE": "true",
    "ENABLE_PRICE_SAMPLER": "true",
    "ENABLE_GAMES_SETTLEMENT": "true",
    "ENABLE_RECON_ORPHAN_HOLDS": "true",
    "ENABLE_LEDGER_RECALC": "true",
    "ENABLE_CAMPAIGNS": "true",
    "ENABLE_ESCROW": "true",
    "ENABLE_DLQ_REPLAYER": "true",
    "CRON_CFB_SETTLE_SWEEP": "5",
    "CRON_CFB_PRICE_SAMPLE": "2",
    "CRON_RECON_ORPHAN_HOLDS": "5",
    "CRON_LEDGER_RECALC": "10",
    "BACKOFF_DEFAULT_MS": "300",
    "BACKOFF_MAX_MS": "2000",
    "MAX_ATTEMPTS_DEFAULT": "5",
    "SHUTDOWN_GRACE_S": "3",
    "PEER_TIMEOUT_S": "5",
}
"""Overridable: a real environment variable of the same name wins."""


def generate_service_key() -> str:
    """A fresh Ed25519 private JWK (text): the workers sign with it, the stubs verify."""
    key = OKPKey.generate_key("Ed25519", parameters={"kid": "dev-1"})
    return json.dumps(key.as_dict(private=True))


def generate_admin_token() -> str:
    return secrets.token_urlsafe(18)


def dev_environment(
    base: Mapping[str, str],
    *,
    redis_url: str,
    peer_base_url: str,
    jwk_text: str,
    port: int,
    admin_token: str,
) -> dict[str, str]:
    """`base` (the real environment) with the dev defaults under it and the stack forced on it.

    Args:
        base: the real environment (and `.env`), which wins over `DEV_DEFAULTS`.
        redis_url: the Redis `dev` uses (its own, or a reachable `REDIS_URL`).
        peer_base_url: the stub peers' root, e.g. `http://127.0.0.1:PORT`.
        jwk_text: the generated service key.
        port: the HTTP server's port.
        admin_token: the generated (or given) admin token.
    """
    env = {**DEV_DEFAULTS, **base}
    env.update({f"SVC_{peer.upper()}_URL": f"{peer_base_url}/{peer}" for peer in PEERS})
    env.update(
        REDIS_URL=redis_url,
        SERVICE_JWT_PRIVATE_JWK=jwk_text,
        SERVICE_JWT_ISSUER=ISSUER,
        PORT=str(port),
        ADMIN_TOKEN=admin_token,
        QUEUE_PREFIX=QUEUE_PREFIX,
    )
    for name in ("CONFIG_URL", "CONFIG_FILE"):  # no hot reload: dev's values are the point
        env.pop(name, None)
    return env
