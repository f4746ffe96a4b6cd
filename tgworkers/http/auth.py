"""Admin authentication: the admin token or a service JWT from a trusted key.

`Authorization: Bearer <token>` where the token is either `ADMIN_TOKEN`
(compared in constant time) or a JWT signed by a key of `ADMIN_TRUSTED_JWKS`
with an allow-listed algorithm (EdDSA / Ed25519 only, so `none` and HMAC
confusion are impossible), `aud` = `SERVICE_NAME`, and `exp`, `iat` and `iss`
present and valid within a small leeway. A kid the key set does not hold is
refused. Nothing about a refused token is logged beyond its kind.
"""

from __future__ import annotations

import hmac
import json
import warnings
from typing import Final, NamedTuple

from joserfc import jwt
from joserfc.errors import JoseError, SecurityWarning
from joserfc.jwk import KeySet

from tgworkers.errors import ConfigError
from tgworkers.http.settings import HttpSettings

ALGORITHMS: Final = ("EdDSA", "Ed25519")
LEEWAY_S: Final = 30
MAX_TOKEN_CHARS: Final = 8192


class Principal(NamedTuple):
    """Who made an admin call: `token` (the shared admin token) or `jwt` and its sub."""

    kind: str
    subject: str


def load_jwks(raw: str) -> KeySet:
    """Parse `ADMIN_TRUSTED_JWKS`; a bad value stops start-up (never echoed)."""
    try:
        keys = KeySet.import_key_set(json.loads(raw))
    except (ValueError, TypeError, KeyError, JoseError):
        raise ConfigError("ADMIN_TRUSTED_JWKS: expected a JWKS JSON document") from None
    if any(k.key_type != "OKP" or k.get("crv") != "Ed25519" for k in keys.keys):
        raise ConfigError("ADMIN_TRUSTED_JWKS: only Ed25519 (OKP) public keys are accepted")
    return keys


class AdminAuth:
    """Decides whether an `Authorization` header belongs to an operator."""

    def __init__(self, settings: HttpSettings) -> None:
        token = settings.admin_token
        self._token = token.reveal().encode() if token is not None else None
        jwks = settings.admin_trusted_jwks
        self._keys = load_jwks(jwks.reveal()) if jwks is not None else None
        self._claims = jwt.JWTClaimsRegistry(
            leeway=LEEWAY_S,
            aud={"essential": True, "value": settings.service_name},
            exp={"essential": True},
            iat={"essential": True},
            iss={"essential": True},
        )

    @property
    def configured(self) -> bool:
        return self._token is not None or self._keys is not None

    def authenticate(self, authorization: str | None) -> Principal | None:
        scheme, _, value = (authorization or "").partition(" ")
        value = value.strip()
        if scheme.lower() != "bearer" or not value or len(value) > MAX_TOKEN_CHARS:
            return None
        if self._token is not None and hmac.compare_digest(value.encode(), self._token):
            return Principal("token", "admin-token")
        if self._keys is not None and value.count(".") == 2:  # noqa: PLR2004 - JWS compact form
            return self._verify_jwt(value)
        return None

    def _verify_jwt(self, value: str) -> Principal | None:
        assert self._keys is not None  # noqa: S101 - checked by the caller
        try:
            with warnings.catch_warnings():
                # RFC 9864 deprecates the name "EdDSA"; peers still send it
                warnings.simplefilter("ignore", SecurityWarning)
                token = jwt.decode(value, self._keys, algorithms=list(ALGORITHMS))
            self._claims.validate(token.claims)
        except (JoseError, ValueError, TypeError):
            return None
        return Principal("jwt", str(token.claims.get("sub") or token.claims.get("iss")))
