"""The service JWT: an Ed25519 key loaded once, per-audience tokens, an `httpx.Auth`.

Invariant: the private key never leaves this module in readable form. It is held
in a `Secret` inside `ServiceKey`, whose repr names only the `kid`; a malformed
`SERVICE_JWT_PRIVATE_JWK` is refused with a one-line `ConfigError` that names the
variable and never quotes its value (the parse error is not chained either).
"""

from __future__ import annotations

import json
import time
import uuid
import warnings
from collections.abc import Callable, Generator
from typing import Final

import httpx
from joserfc import jwt
from joserfc.errors import JoseError, SecurityWarning
from joserfc.jwk import OKPKey

from tgworkers.errors import ConfigError
from tgworkers.secrets import Secret

ENV_JWK: Final = "SERVICE_JWT_PRIVATE_JWK"
ENV_ALG: Final = "SERVICE_JWT_ALG"
ALGORITHMS: Final = ("EdDSA", "Ed25519")
TOKEN_TTL_S: Final = 300
"""The contract's maximum lifetime; a token is minted at most every 270 s per audience."""
REFRESH_BEFORE_S: Final = 30


def _refuse(reason: str) -> ConfigError:
    return ConfigError(f"{ENV_JWK}: {reason}")


class ServiceKey:
    """The service's Ed25519 private key and its `kid`; shows only the `kid`."""

    __slots__ = ("_key", "kid")

    def __init__(self, key: OKPKey, kid: str) -> None:
        self._key: Secret[OKPKey] = Secret(key)
        self.kid = kid

    @classmethod
    def from_jwk_text(cls, text: str | Secret[str]) -> ServiceKey:
        """Parse `SERVICE_JWT_PRIVATE_JWK`; anything but an OKP Ed25519 private JWK is refused.

        Raises:
            ConfigError: one line naming the variable and the problem, never the key.
        """
        raw = text.reveal() if isinstance(text, Secret) else text
        try:
            jwk = json.loads(raw)
        except ValueError:
            raise _refuse("not valid JSON") from None
        if not isinstance(jwk, dict):
            raise _refuse("expected a JSON object (a JWK)")
        if jwk.get("kty") != "OKP":
            raise _refuse("expected kty 'OKP' (an Ed25519 key)")
        if jwk.get("crv") != "Ed25519":
            raise _refuse("expected crv 'Ed25519'")
        if not isinstance(jwk.get("d"), str) or not isinstance(jwk.get("x"), str):
            raise _refuse("expected a private key (fields 'd' and 'x'); got a public-only JWK")
        try:
            key = OKPKey.import_key(jwk)
        except (JoseError, ValueError, TypeError):
            raise _refuse("not a valid Ed25519 key") from None
        kid = jwk.get("kid")
        return cls(key, kid if isinstance(kid, str) and kid else key.thumbprint())

    def public_jwk(self) -> dict[str, str]:
        """The public half, with `kid` (for peers and the fake peers to verify with)."""
        public = {k: str(v) for k, v in self._key.reveal().as_dict(private=False).items()}
        public["kid"] = self.kid
        return public

    def sign(self, header: dict[str, str], claims: dict[str, object], alg: str) -> str:
        with warnings.catch_warnings():
            # RFC 9864 deprecates "EdDSA"; it stays the default until every verifier has Ed25519.
            warnings.filterwarnings(
                "ignore", message="EdDSA is deprecated", category=SecurityWarning
            )
            return jwt.encode(header, claims, self._key.reveal(), algorithms=[alg])

    def __repr__(self) -> str:
        return f"ServiceKey(kid={self.kid!r})"

    __str__ = __repr__

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("a ServiceKey cannot be pickled")


class _Token:
    __slots__ = ("exp_s", "value")

    def __init__(self, value: str, exp_s: int) -> None:
        self.value = value
        self.exp_s = exp_s


class ServiceTokens:
    """Mints service JWTs and keeps one per audience until 30 s before it expires.

    Shared by every peer client of the process; the clock is injectable for tests.
    Not thread-safe: one event loop owns it.
    """

    def __init__(
        self,
        key: ServiceKey,
        *,
        issuer: str,
        subject: str,
        alg: str = "EdDSA",
        ttl_s: int = TOKEN_TTL_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if alg not in ALGORITHMS:
            raise ConfigError(f"{ENV_ALG}: expected one of {', '.join(ALGORITHMS)}, got {alg!r}")
        if not REFRESH_BEFORE_S < ttl_s <= TOKEN_TTL_S:
            raise ConfigError(f"token lifetime must be in ({REFRESH_BEFORE_S}, {TOKEN_TTL_S}] s")
        self._key = key
        self._issuer = issuer
        self._subject = subject
        self._alg = alg
        self._ttl_s = ttl_s
        self._clock = clock
        self._cache: dict[str, _Token] = {}
        self.minted = 0

    def token(self, audience: str) -> str:
        now_s = int(self._clock())
        cached = self._cache.get(audience)
        if cached is not None and now_s < cached.exp_s - REFRESH_BEFORE_S:
            return cached.value
        exp_s = now_s + self._ttl_s
        claims: dict[str, object] = {
            "iss": self._issuer,
            "sub": self._subject,
            "aud": audience,
            "iat": now_s,
            "exp": exp_s,
            "jti": uuid.uuid4().hex,
        }
        header = {"alg": self._alg, "typ": "JWT", "kid": self._key.kid}
        value = self._key.sign(header, claims, self._alg)
        self._cache[audience] = _Token(value, exp_s)
        self.minted += 1
        return value

    def __repr__(self) -> str:
        return f"ServiceTokens(kid={self._key.kid!r}, issuer={self._issuer!r})"


class ServiceJWTAuth(httpx.Auth):
    """Signs every request to one peer with `Authorization: Bearer <service JWT>`."""

    def __init__(self, tokens: ServiceTokens, audience: str) -> None:
        self._tokens = tokens
        self.audience = audience

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = "Bearer " + self._tokens.token(self.audience)
        yield request

    def __repr__(self) -> str:
        return f"ServiceJWTAuth(audience={self.audience!r})"
