"""`HttpSettings`: what the HTTP server reads, mapped from the parsed environment.

The mapping is `bootstrap.process.http_settings`, beside the engine's and the
telemetry's, so the server never reads a peer URL or the service key.
"""

from __future__ import annotations

import msgspec

from tgworkers.secrets import Secret


class HttpSettings(msgspec.Struct, frozen=True, kw_only=True):
    """`PORT`, `SERVICE_NAME` (the audience of operators' JWTs) and the secrets that guard."""

    port: int | None = None
    service_name: str = "tgworkers"
    admin_token: Secret[str] | None = None
    admin_trusted_jwks: Secret[str] | None = None
    metrics_token: Secret[str] | None = None
