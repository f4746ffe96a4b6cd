"""Service JWT: header, claims, verification by joserfc and PyJWT, cache, key refusal."""

from __future__ import annotations

import json
import time
import warnings
from typing import Any

import httpx
import jwt as pyjwt
import pytest
from joserfc import jwt
from joserfc.errors import SecurityWarning
from joserfc.jwk import ECKey, OKPKey, RSAKey
from joserfc.jwt import JWTClaimsRegistry

from tgworkers.errors import ConfigError
from tgworkers.peers import ServiceJWTAuth, ServiceKey, ServiceTokens


class Clock:
    def __init__(self, now_s: float = 1_800_000_000.0) -> None:
        self.now_s = now_s

    def __call__(self) -> float:
        return self.now_s


@pytest.fixture(scope="module")
def jwk() -> dict[str, Any]:
    return OKPKey.generate_key("Ed25519").as_dict(private=True)


@pytest.fixture
def key(jwk: dict[str, str]) -> ServiceKey:
    return ServiceKey.from_jwk_text(json.dumps(jwk))


def _tokens(key: ServiceKey, clock: Clock | None = None, alg: str = "EdDSA") -> ServiceTokens:
    return ServiceTokens(
        key, issuer="tgw-issuer", subject="tgworkers", alg=alg, clock=clock or Clock()
    )


def _decode(token: str, key: ServiceKey, alg: str = "EdDSA") -> jwt.Token:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "EdDSA is deprecated", SecurityWarning)
        return jwt.decode(token, OKPKey.import_key(key.public_jwk()), algorithms=[alg])


def test_header_and_claims_follow_the_contract(key: ServiceKey) -> None:
    decoded = _decode(_tokens(key).token("payhub"), key)
    assert decoded.header == {"alg": "EdDSA", "typ": "JWT", "kid": key.kid}
    claims = decoded.claims
    assert {k: claims[k] for k in ("iss", "sub", "aud")} == {
        "iss": "tgw-issuer", "sub": "tgworkers", "aud": "payhub"
    }  # fmt: skip
    assert claims["iat"] == 1_800_000_000
    assert claims["exp"] - claims["iat"] == 300
    assert len(claims["jti"]) >= 16


def test_kid_is_the_jwk_kid_else_its_rfc7638_thumbprint(jwk: dict[str, str]) -> None:
    assert ServiceKey.from_jwk_text(json.dumps(jwk)).kid == OKPKey.import_key(jwk).thumbprint()
    assert ServiceKey.from_jwk_text(json.dumps({**jwk, "kid": "k-2026"})).kid == "k-2026"


def test_joserfc_verifies_the_token_with_the_public_key_only(key: ServiceKey) -> None:
    token = _tokens(key, Clock(time.time())).token("escrow")
    decoded = _decode(token, key)
    JWTClaimsRegistry(
        iss={"essential": True, "value": "tgw-issuer"},
        aud={"essential": True, "value": "escrow"},
        exp={"essential": True},
        jti={"essential": True},
    ).validate(decoded.claims)
    assert "d" not in key.public_jwk()


def test_pyjwt_verifies_the_eddsa_token(key: ServiceKey) -> None:
    token = _tokens(key, Clock(time.time())).token("campaigns")
    public = pyjwt.PyJWK(key.public_jwk())
    claims = pyjwt.decode(token, public.key, algorithms=["EdDSA"], audience="campaigns",
                          issuer="tgw-issuer", options={"require": ["exp", "iat", "jti"]})  # fmt: skip
    assert claims["sub"] == "tgworkers"
    assert pyjwt.get_unverified_header(token)["kid"] == key.kid


def test_ed25519_alg_is_switchable(key: ServiceKey) -> None:
    decoded = _decode(_tokens(key, alg="Ed25519").token("price"), key, alg="Ed25519")
    assert decoded.header["alg"] == "Ed25519"


def test_an_unknown_alg_is_refused_naming_the_variable(key: ServiceKey) -> None:
    with pytest.raises(ConfigError, match=r"^SERVICE_JWT_ALG: expected one of EdDSA, Ed25519"):
        _tokens(key, alg="RS256")


def test_a_token_is_reused_per_audience_until_30s_before_expiry(key: ServiceKey) -> None:
    clock = Clock()
    tokens = _tokens(key, clock)
    first = tokens.token("payhub")
    other = tokens.token("playhub")
    clock.now_s += 269
    assert tokens.token("payhub") == first
    assert other != first
    clock.now_s += 1  # 30 s before expiry: a new token, with a new jti
    refreshed = tokens.token("payhub")
    assert refreshed != first
    assert _decode(refreshed, key).claims["jti"] != _decode(first, key).claims["jti"]
    assert tokens.minted == 3


def test_the_auth_sets_a_bearer_token_for_its_audience(key: ServiceKey) -> None:
    auth = ServiceJWTAuth(_tokens(key), "discovery")
    request = httpx.Request("GET", "http://peer/x")
    signed = next(auth.auth_flow(request))
    scheme, token = signed.headers["Authorization"].split(" ")
    assert scheme == "Bearer"
    assert _decode(token, key).claims["aud"] == "discovery"


def _refused_jwks(jwk: dict[str, str]) -> list[tuple[str, str, str]]:
    rsa = json.dumps(RSAKey.generate_key(2048).as_dict(private=True))
    ec = json.dumps(ECKey.generate_key("P-256").as_dict(private=True))
    public = json.dumps({k: v for k, v in jwk.items() if k != "d"})
    x25519 = json.dumps(OKPKey.generate_key("X25519").as_dict(private=True))
    broken_d = json.dumps({**jwk, "d": jwk["d"][:-4] + "!!!!"})
    return [
        ("rsa", rsa, "expected kty 'OKP'"),
        ("ec", ec, "expected kty 'OKP'"),
        ("public-only", public, "got a public-only JWK"),
        ("x25519", x25519, "expected crv 'Ed25519'"),
        ("malformed", json.dumps(jwk)[:-5], "not valid JSON"),
        ("array", json.dumps([jwk]), "expected a JSON object"),
        ("broken-d", broken_d, "not a valid Ed25519 key"),
    ]


def test_anything_but_an_ed25519_private_jwk_is_refused_without_echoing_it(
    jwk: dict[str, str],
) -> None:
    for name, text, reason in _refused_jwks(jwk):
        with pytest.raises(ConfigError) as caught:
            ServiceKey.from_jwk_text(text)
        message = str(caught.value)
        assert message.startswith("SERVICE_JWT_PRIVATE_JWK: "), name
        assert reason in message, name
        assert "\n" not in message, name
        assert jwk["d"] not in message and '"d"' not in message, name
        assert caught.value.__cause__ is None, name


def test_reprs_show_the_kid_never_the_key(key: ServiceKey, jwk: dict[str, str]) -> None:
    tokens = _tokens(key)
    for text in (repr(key), str(key), repr(tokens), repr(ServiceJWTAuth(tokens, "payhub"))):
        assert jwk["d"] not in text
    assert repr(key) == f"ServiceKey(kid={key.kid!r})"
    with pytest.raises(TypeError, match="cannot be pickled"):
        key.__reduce__()
