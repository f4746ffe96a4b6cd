"""Admin authentication and roles: admin tokens or a service JWT from a trusted key.

`Authorization: Bearer <token>` where the token is `ADMIN_TOKEN` (role `admin`),
`ADMIN_READONLY_TOKEN` (role `read`), both compared in constant time, or a JWT
signed by a key of `ADMIN_TRUSTED_JWKS` with an allow-listed algorithm (EdDSA /
Ed25519 only, so `none` and HMAC confusion are impossible), `aud` =
`SERVICE_NAME`, `iss` in `ADMIN_JWT_ISSUERS`, `exp` and `iat` present, valid
within a small leeway and at most `ADMIN_JWT_MAX_LIFETIME_S` apart (a leaked
token is worth minutes, not days). A JWT's role comes from its `scope` claim:
`admin` may change things, `read` (or no scope) may only read: least privilege
for callers that never asked for more. A kid the key set does not hold is
refused. Nothing about a refused token is logged beyond its kind.
"""

from __future__ import annotations

import hmac
import json
import warnings
from typing import Any, Final, Literal, NamedTuple

from joserfc import jwt
from joserfc.errors import JoseError, SecurityWarning
from joserfc.jwk import KeySet

from tgworkers.errors import ConfigError
from tgworkers.http.settings import HttpSettings

ALGORITHMS: Final = ("EdDSA", "Ed25519")
LEEWAY_S: Final = 30
MAX_TOKEN_CHARS: Final = 8192

Role = Literal["admin", "read"]


class Principal(NamedTuple):
    """Who made a call: `kind` (token, readonly-token, jwt, session), subject and role."""

    kind: str
    subject: str
    role: Role = "admin"

    @property
    def may_change(self) -> bool:
        return self.role == "admin"

    @property
    def who(self) -> str:
        """The audit stream's `who`: the token role or the JWT subject."""
        return self.subject


def load_jwks(raw: str) -> KeySet:
    """Parse `ADMIN_TRUSTED_JWKS`; a bad value stops start-up (never echoed)."""
    try:
        keys = KeySet.import_key_set(json.loads(raw))
    except (ValueError, TypeError, KeyError, JoseError):
        raise ConfigError("ADMIN_TRUSTED_JWKS: expected a JWKS JSON document") from None
    if any(k.key_type != "OKP" or k.get("crv") != "Ed25519" for k in keys.keys):
        raise ConfigError("ADMIN_TRUSTED_JWKS: only Ed25519 (OKP) public keys are accepted")
    return keys


def role_of_scope(scope: Any) -> Role:
    """`scope` as a space-separated string (RFC 8693) or a list; `admin` wins."""
    items = scope.split() if isinstance(scope, str) else scope if isinstance(scope, list) else []
    return "admin" if "admin" in items else "read"


def _secret_bytes(value: Any) -> bytes | None:
    return value.reveal().encode() if value is not None else None


class AdminAuth:
    """Decides whether a bearer token belongs to an operator, and with which role."""

    def __init__(self, settings: HttpSettings) -> None:
        self._token = _secret_bytes(settings.admin_token)
        self._readonly = _secret_bytes(settings.admin_readonly_token)
        jwks = settings.admin_trusted_jwks
        self._keys = load_jwks(jwks.reveal()) if jwks is not None else None
        self._issuers = frozenset(settings.admin_jwt_issuers)
        self._max_lifetime_s = settings.admin_jwt_max_lifetime_s
        self._claims = jwt.JWTClaimsRegistry(
            leeway=LEEWAY_S,
            aud={"essential": True, "value": settings.service_name},
            exp={"essential": True},
            iat={"essential": True},
            iss={"essential": True, "values": sorted(self._issuers)},
        )

    @property
    def configured(self) -> bool:
        return self._token is not None or self._keys is not None or self._readonly is not None

    def authenticate(self, authorization: str | None) -> Principal | None:
        scheme, _, value = (authorization or "").partition(" ")
        if scheme.lower() != "bearer":
            return None
        return self.check_token(value.strip())

    def check_token(self, value: str) -> Principal | None:
        """The principal a raw token stands for (the console's login form uses it too)."""
        if not value or len(value) > MAX_TOKEN_CHARS:
            return None
        raw = value.encode()
        if self._token is not None and hmac.compare_digest(raw, self._token):
            return Principal("token", "admin-token", "admin")
        if self._readonly is not None and hmac.compare_digest(raw, self._readonly):
            return Principal("readonly-token", "readonly-token", "read")
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
        claims = token.claims
        lifetime = claims.get("exp", 0) - claims.get("iat", 0)
        if not isinstance(lifetime, int | float) or lifetime > self._max_lifetime_s:
            return None
        if claims.get("iss") not in self._issuers:  # also when the allow-list is empty
            return None
        subject = str(claims.get("sub") or claims.get("iss"))
        return Principal("jwt", subject, role_of_scope(claims.get("scope")))
