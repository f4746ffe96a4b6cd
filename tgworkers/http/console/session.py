"""Console sessions and one-time login links, kept in Redis, named by a signed cookie.

A login (the admin or read-only token typed into the form, or a one-time link)
creates a session record in Redis (`GlobalKeys.console("session", id)`, JSON with
role, who, CSRF token, expiry; TTL = `CONSOLE_SESSION_TTL_S`). The browser holds
only `<id>.<HMAC-SHA256(id)>` in an HttpOnly, SameSite=Strict cookie (Secure when
the request came over TLS). Logout deletes the record, so a copied cookie dies
with it, on every replica. The signature lets garbage be refused without a Redis
round trip; the key is `CONSOLE_SESSION_SECRET`, else derived from the admin tokens
(see `signing_key`).

A login link is a random id stored with a short TTL and consumed with GETDEL:
it works once, then never again.

Failed sign-ins are throttled per client address: `LOGIN_MAX_FAILURES` failures
(a wrong token, or a used or unknown link) within `LOGIN_WINDOW_S` of the first
refuse every further attempt from that address, the right token included, until
the window ends (429 with `Retry-After`). The counter
(`GlobalKeys.console("login-fails", address)`) lives in Redis, so every replica
counts the same failures, and expires with its window.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from typing import Any, Final, Protocol

import msgspec
from redis.asyncio import Redis

from tgworkers.http.auth import Principal, Role
from tgworkers.http.settings import HttpSettings

COOKIE: Final = "tgw_session"
LINK_TTL_S: Final = 3600
LOGIN_MAX_FAILURES: Final = 5
LOGIN_WINDOW_S: Final = 300


class Session(msgspec.Struct, frozen=True, kw_only=True):
    """What a session cookie stands for."""

    id: str
    role: Role
    who: str
    csrf: str
    expires_at: int

    def principal(self) -> Principal:
        return Principal("session", self.who, self.role)


class _Record(msgspec.Struct, frozen=True, kw_only=True):
    role: Role
    who: str
    csrf: str
    expires_at: int


_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(_Record).decode


def signing_key(settings: HttpSettings) -> bytes:
    """`CONSOLE_SESSION_SECRET`, else one derived from the admin tokens, else random.

    Derived, every replica sharing the tokens verifies every replica's cookies
    without another secret to distribute (rotating a token signs everyone out);
    random (no token configured) holds for this process only.
    """
    if settings.console_session_secret is not None:
        return settings.console_session_secret.reveal().encode()
    tokens = [t.reveal() for t in (settings.admin_token, settings.admin_readonly_token) if t]
    if not tokens:
        return secrets.token_bytes(32)
    material = "\n".join(["tgworkers console session v1", *tokens]).encode()
    return hashlib.sha256(material).digest()


class ConsoleKeys(Protocol):
    """Where console records live (the engine's `Layout(...).globals` names them)."""

    def console(self, kind: str, token_id: str) -> str: ...


class SessionStore:
    """Opens, reads and ends console sessions; issues and redeems login links."""

    def __init__(self, redis: Redis, keys: ConsoleKeys, settings: HttpSettings) -> None:
        self.redis = redis
        self.keys = keys
        self._key = signing_key(settings)
        self.ttl_s = settings.console_session_ttl_s

    def _sign(self, session_id: str) -> str:
        return hmac.new(self._key, session_id.encode(), hashlib.sha256).hexdigest()

    def cookie_value(self, session: Session) -> str:
        return f"{session.id}.{self._sign(session.id)}"

    def _verified_id(self, cookie: str | None) -> str | None:
        session_id, _, signature = (cookie or "").partition(".")
        if not session_id or len(cookie or "") > 200:  # noqa: PLR2004 - id + hex digest
            return None
        return session_id if hmac.compare_digest(signature, self._sign(session_id)) else None

    async def open(self, principal: Principal) -> Session:
        session = Session(
            id=secrets.token_urlsafe(32), role=principal.role, who=principal.who,
            csrf=secrets.token_urlsafe(32), expires_at=int(time.time()) + self.ttl_s,
        )  # fmt: skip
        record = _Record(role=session.role, who=session.who, csrf=session.csrf,
                         expires_at=session.expires_at)  # fmt: skip
        await self.redis.set(self.keys.console("session", session.id), _encode(record),
                             ex=self.ttl_s)  # fmt: skip
        return session

    async def read(self, cookie: str | None) -> Session | None:
        session_id = self._verified_id(cookie)
        if session_id is None:
            return None
        raw: Any = await self.redis.get(self.keys.console("session", session_id))
        if not raw:
            return None
        record = _decode(raw)
        if record.expires_at <= time.time():
            return None
        return Session(id=session_id, role=record.role, who=record.who, csrf=record.csrf,
                       expires_at=record.expires_at)  # fmt: skip

    async def end(self, session: Session) -> None:
        await self.redis.delete(self.keys.console("session", session.id))

    async def issue_link(self, role: Role = "admin", who: str = "login-link") -> str:
        """A one-time login token (for `dev`'s printed URL); valid `LINK_TTL_S`."""
        token = secrets.token_urlsafe(32)
        record = _Record(role=role, who=who, csrf="", expires_at=int(time.time()) + LINK_TTL_S)
        await self.redis.set(self.keys.console("link", token), _encode(record), ex=LINK_TTL_S)
        return token

    async def redeem_link(self, token: str) -> Principal | None:
        if not token or len(token) > 100:  # noqa: PLR2004
            return None
        raw: Any = await self.redis.getdel(self.keys.console("link", token))
        if not raw:
            return None
        record = _decode(raw)
        return Principal("session", record.who, record.role)

    async def login_wait_s(self, address: str) -> int:
        """Seconds until `address` may try to sign in again; 0 when it may now."""
        key = self.keys.console("login-fails", address)
        pipe: Any = self.redis.pipeline(transaction=False)  # queued calls are not awaitables
        pipe.get(key)
        pipe.ttl(key)
        count, ttl = await pipe.execute()
        if int(count or 0) < LOGIN_MAX_FAILURES:
            return 0
        return max(1, int(ttl)) if int(ttl) > 0 else LOGIN_WINDOW_S

    async def login_failed(self, address: str) -> None:
        """Count one failed sign-in; the window starts at the first failure."""
        key = self.keys.console("login-fails", address)
        pipe: Any = self.redis.pipeline(transaction=True)
        pipe.incr(key)
        pipe.expire(key, LOGIN_WINDOW_S, nx=True)
        await pipe.execute()

    async def login_succeeded(self, address: str) -> None:
        await self.redis.delete(self.keys.console("login-fails", address))
