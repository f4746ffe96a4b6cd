"""Value parsers: one per kind of variable, each raising `ValueError` with the expected form.

`parse` turns that into a one-line `ConfigError` naming the variable, with nothing
of a secret's value.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from typing import Final, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit

from tgworkers.engine.schedule import cron
from tgworkers.errors import ConfigError

T = TypeVar("T")


def int_in(lo: int, hi: int | None = None) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        try:
            value = int(raw.strip().replace("_", ""))
        except ValueError:
            raise ValueError(f"expected an integer, got {raw!r}") from None
        if value < lo or (hi is not None and value > hi):
            bound = f">= {lo}" if hi is None else f"between {lo} and {hi}"
            raise ValueError(f"expected an integer {bound}, got {value}")
        return value

    return parse


def float_min(lo: float) -> Callable[[str], float]:
    def parse(raw: str) -> float:
        try:
            value = float(raw.strip())
        except ValueError:
            raise ValueError(f"expected a number, got {raw!r}") from None
        if value < lo:
            raise ValueError(f"expected a number >= {lo:g}, got {value:g}")
        return value

    return parse


_TRUE: Final = frozenset({"1", "true", "yes", "on"})
_FALSE: Final = frozenset({"0", "false", "no", "off", ""})


def parse_bool(raw: str) -> bool:
    low = raw.strip().lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise ValueError(f"expected true or false, got {raw!r}")


def choice(*options: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        value = raw.strip()
        if value.lower() not in {o.lower() for o in options}:
            raise ValueError(f"expected one of {', '.join(options)}, got {raw!r}")
        return next(o for o in options if o.lower() == value.lower())

    return parse


def url(*schemes: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        value = raw.strip()
        parts = urlsplit(value)
        located = parts.netloc or (parts.scheme == "unix" and parts.path)
        if parts.scheme not in schemes or not located:
            raise ValueError(f"expected a URL starting with {' or '.join(schemes)}://")
        return value.rstrip("/")

    return parse


def csv(raw: str) -> tuple[str, ...]:
    return tuple(x.strip() for x in raw.split(",") if x.strip())


def text(raw: str) -> str:
    if not raw.strip():
        raise ValueError("expected a non-empty value")
    return raw.strip()


MIN_ADMIN_TOKEN_CHARS: Final = 24


def admin_token(raw: str) -> str:
    """A shared secret long enough not to be guessed (24+ characters)."""
    value = raw.strip()
    if len(value) < MIN_ADMIN_TOKEN_CHARS:
        raise ValueError(
            f"expected at least {MIN_ADMIN_TOKEN_CHARS} characters "
            "(e.g. `python -c 'import secrets; print(secrets.token_urlsafe(32))'`)"
        )
    return value


def trace_template(raw: str) -> str:
    """A URL with a `{traceId}` placeholder."""
    value = url("http", "https")(raw)
    if "{traceId}" not in value:
        raise ValueError(f"expected a URL containing {{traceId}}, got {raw!r}")
    return value


def time_zone(raw: str) -> str:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError  # noqa: PLC0415 - start-up only

    try:
        ZoneInfo(raw.strip())
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"expected an IANA time zone such as UTC or Europe/Berlin, got {raw!r}"
        ) from None
    return raw.strip()


_REDIS_SCHEMES: Final = ("redis", "rediss", "unix", "redis+cluster", "rediss+cluster")


def split_cluster_url(url: str) -> tuple[str, bool]:
    """A `REDIS_URL` without its cluster marker, and whether it named a cluster.

    `redis+cluster://h:6379` and `redis://h:6379?cluster=true` both name a cluster;
    what the Redis client gets is the plain `redis://` form.
    """
    parts = urlsplit(url)
    if not parts.scheme.endswith("+cluster") and "cluster=" not in parts.query:
        return url, False
    cluster = parts.scheme.endswith("+cluster")
    scheme = parts.scheme.removesuffix("+cluster")
    query = parse_qsl(parts.query, keep_blank_values=True)
    rest = [(k, v) for k, v in query if k != "cluster"]
    for key, value in query:
        if key == "cluster":
            cluster = cluster or parse_bool(value)
    return parts._replace(scheme=scheme, query=urlencode(rest)).geturl(), cluster


def redis_url(raw: str) -> str:
    try:
        value = url(*_REDIS_SCHEMES)(raw)
    except ValueError:
        raise ValueError(
            "expected redis://host:port/db, rediss://…, unix:///path.sock, "
            "or a cluster: redis+cluster://host:port (or ?cluster=true)"
        ) from None
    try:
        split_cluster_url(value)
    except ValueError:
        raise ValueError("expected cluster=true or cluster=false in the query") from None
    return value


def _b64url_bytes(value: object) -> int:
    """Length of a base64url (unpadded) string's bytes, or -1 when it is not one."""
    if not isinstance(value, str):
        return -1
    try:
        return len(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)))
    except (binascii.Error, ValueError):
        return -1


_ED25519_BYTES: Final = 32


def ed25519_jwk(raw: str) -> str:
    """A private Ed25519 JWK (`kty` OKP, `crv` Ed25519, 32-byte `x` and `d`)."""
    expected = 'expected a private Ed25519 JWK: {"kty":"OKP","crv":"Ed25519","x":…,"d":…}'
    try:
        jwk = json.loads(raw)
    except ValueError:
        raise ValueError(f"{expected}; it is not JSON") from None
    if not isinstance(jwk, dict) or jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
        raise ValueError(f"{expected}; it is not an Ed25519 key")
    if any(_b64url_bytes(jwk.get(part)) != _ED25519_BYTES for part in ("x", "d")):
        raise ValueError(f"{expected}; x and d must be 32-byte base64url values")
    return raw.strip()


def jwks(raw: str) -> str:
    """A JWKS document: `{"keys": [{…}, …]}` with at least one key."""
    try:
        doc = json.loads(raw)
    except ValueError:
        raise ValueError('expected a JWKS JSON document {"keys": [...]}; it is not JSON') from None
    keys = doc.get("keys") if isinstance(doc, dict) else None
    if not isinstance(keys, list) or not keys or not all(isinstance(k, dict) for k in keys):
        raise ValueError('expected a JWKS JSON document {"keys": [...]} with at least one key')
    return raw.strip()


def check_schedule(variable: str, value: str, tz: str) -> None:
    """Validate one `CRON_*` value with the scheduler's own parser (one syntax)."""
    try:
        cron.parse_schedule(value, tz=tz, variable=variable)
    except ValueError as exc:
        message = str(exc)
        raise ConfigError(message if variable in message else f"{variable}: {message}") from None


def parse(name: str, raw: str, parser: Callable[[str], T], *, secret: bool) -> T:
    try:
        return parser(raw)
    except ValueError as exc:
        detail = str(exc)
        if secret:  # never echo any part of a secret
            detail = detail.split(", got", maxsplit=1)[0]
        raise ConfigError(f"{name}: {detail}") from None
