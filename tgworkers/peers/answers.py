"""The contract's answer table as one pure function: (status, headers, body) → `PeerAnswer`.

Everything a worker does with a peer's answer is decided here, once, so the
table in contracts/peers.md and this module can be read side by side. The HTTP
client turns the answer into a return value or a `PeerError` (see `to_error`).
"""

from __future__ import annotations

import enum
import time
from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from typing import Final

import msgspec

from tgworkers.peers.errors import (
    PeerAuthError,
    PeerError,
    PeerNotDueError,
    PeerPermanentError,
    PeerTransientError,
    PeerUnexpectedError,
)

BODY_CAP_BYTES: Final = 2048
"""Error bodies are cut to 2 KiB before they go into an error or the DLQ."""

ALREADY_DONE: Final = "already_done"
NOT_DUE: Final = "not_due"
PERMANENT_CONFLICTS: Final = frozenset({"invalid_transition", "hold_not_active", "unbalanced"})
"""409 codes that are permanent unless a call lists them as success-equivalent."""

_TRANSIENT: Final = frozenset({408, 429, 500, 502, 503, 504})
_PERMANENT: Final = frozenset({400, 404, 410, 422})
_AUTH: Final = frozenset({401, 403})
_CONFLICT: Final = 409
_TOO_EARLY: Final = 425


class AnswerKind(enum.Enum):
    """The closed set of answer kinds of the contract's table."""

    SUCCESS = "success"
    SUCCESS_EQUIVALENT = "success_equivalent"
    NOT_DUE = "not_due"
    TRANSIENT = "transient"
    PERMANENT = "permanent"
    AUTH = "auth"
    UNEXPECTED = "unexpected"


class PeerAnswer(msgspec.Struct, frozen=True, kw_only=True):
    """One classified answer; `body` is the response text cut to 2 KiB."""

    kind: AnswerKind
    status: int
    code: str | None = None
    body: str = ""
    retry_after_ms: int | None = None
    retry_at_ms: int | None = None

    @property
    def ok(self) -> bool:
        return self.kind in (AnswerKind.SUCCESS, AnswerKind.SUCCESS_EQUIVALENT)


class _ErrorBody(msgspec.Struct):
    code: str | None = None
    retryAt: int | None = None  # noqa: N815 - the wire name


_ERROR_DECODER: Final = msgspec.json.Decoder(_ErrorBody)


def classify(
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    *,
    success_codes: frozenset[str] = frozenset(),
    now_ms: int | None = None,
) -> PeerAnswer:
    """Map one HTTP answer to its kind in the contract's table.

    Args:
        status: the HTTP status.
        headers: response headers (case-insensitive mapping, e.g. `httpx.Headers`).
        body: the raw response body.
        success_codes: 409 codes this call treats as done (e.g. `hold_not_active`
            on a hold release); `already_done` always is.
        now_ms: the clock for an HTTP-date `Retry-After`; the wall clock when None.
    """
    if 200 <= status < 300:  # noqa: PLR2004 - the 2xx range
        return PeerAnswer(kind=AnswerKind.SUCCESS, status=status)
    code, retry_at_ms = _error_fields(body)
    kind = _kind(status, code, success_codes)
    retry_after_ms = _retry_after_ms(headers.get("retry-after"), now_ms)
    if kind is AnswerKind.NOT_DUE and retry_at_ms is None and retry_after_ms is not None:
        retry_at_ms = (now_ms if now_ms is not None else _now_ms()) + retry_after_ms
    return PeerAnswer(
        kind=kind,
        status=status,
        code=code,
        body=cut_body(body),
        retry_after_ms=retry_after_ms,
        retry_at_ms=retry_at_ms if kind is AnswerKind.NOT_DUE else None,
    )


def _kind(status: int, code: str | None, success_codes: frozenset[str]) -> AnswerKind:
    if status == _CONFLICT:
        return _conflict_kind(code, success_codes)
    if status == _TOO_EARLY:
        return AnswerKind.NOT_DUE
    if status in _TRANSIENT:
        return AnswerKind.TRANSIENT
    if status in _PERMANENT:
        return AnswerKind.PERMANENT
    if status in _AUTH:
        return AnswerKind.AUTH
    return AnswerKind.UNEXPECTED


def _conflict_kind(code: str | None, success_codes: frozenset[str]) -> AnswerKind:
    if code == ALREADY_DONE or (code is not None and code in success_codes):
        return AnswerKind.SUCCESS_EQUIVALENT
    if code == NOT_DUE:
        return AnswerKind.NOT_DUE
    if code in PERMANENT_CONFLICTS:
        return AnswerKind.PERMANENT
    return AnswerKind.UNEXPECTED


def _error_fields(body: bytes) -> tuple[str | None, int | None]:
    try:
        parsed = _ERROR_DECODER.decode(body)
    except msgspec.DecodeError:  # not JSON, not an object, or odd field types
        return None, None
    return parsed.code, parsed.retryAt


def _retry_after_ms(value: str | None, now_ms: int | None) -> int | None:
    """`Retry-After` as milliseconds from now: delay-seconds or an HTTP date (RFC 9110)."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return int(value) * 1000
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # an obsolete form without a zone means GMT
        return None
    now = now_ms if now_ms is not None else _now_ms()
    return max(0, int(when.timestamp() * 1000) - now)


def cut_body(body: bytes) -> str:
    """The body as text, cut to `BODY_CAP_BYTES` (a broken last character is replaced)."""
    return body[:BODY_CAP_BYTES].decode("utf-8", errors="replace")


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def to_error(answer: PeerAnswer, *, peer: str, operation: str) -> PeerError:
    """The `PeerError` for an answer that is not a success (kind other than the ok ones)."""
    message = f"{peer} {operation}: HTTP {answer.status}" + (
        f" {answer.code}" if answer.code else ""
    )
    peer_, status, code, body = peer, answer.status, answer.code, answer.body
    match answer.kind:
        case AnswerKind.PERMANENT:
            return PeerPermanentError(message, peer=peer_, status=status, code=code, body=body)
        case AnswerKind.NOT_DUE:
            return PeerNotDueError(
                message,
                peer=peer_,
                retry_at_ms=answer.retry_at_ms,
                status=status,
                code=code,
                body=body,
            )
        case AnswerKind.TRANSIENT:
            error_type: type[PeerTransientError | PeerAuthError | PeerUnexpectedError]
            error_type = PeerTransientError
        case AnswerKind.AUTH:
            error_type = PeerAuthError
        case _:
            error_type = PeerUnexpectedError
    return error_type(
        message, peer=peer_, after_ms=answer.retry_after_ms, status=status, code=code, body=body
    )
