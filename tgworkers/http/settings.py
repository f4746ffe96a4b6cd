"""`HttpSettings`: what the HTTP server reads, mapped from the parsed environment.

The mapping is `bootstrap.layer_settings.http_settings`, beside the engine's and the
telemetry's, so the server never reads a peer URL or the service key.
"""

from __future__ import annotations

import msgspec

from tgworkers.secrets import Secret


class HttpSettings(msgspec.Struct, frozen=True, kw_only=True):
    """What the HTTP server reads: port, credentials and policy, the trace link template.

    `SERVICE_NAME` is the audience of operators' JWTs.
    """

    port: int | None = None
    service_name: str = "tgworkers"
    admin_token: Secret[str] | None = None
    admin_readonly_token: Secret[str] | None = None
    admin_trusted_jwks: Secret[str] | None = None
    admin_jwt_issuers: tuple[str, ...] = ()
    admin_jwt_max_lifetime_s: int = 600
    metrics_token: Secret[str] | None = None
    console_session_secret: Secret[str] | None = None
    console_session_ttl_s: int = 28_800
    trace_url_template: str | None = None
