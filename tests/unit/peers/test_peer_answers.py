"""The contract's answer table, row by row, and the error class each row raises."""

from __future__ import annotations

import pytest

from tgworkers.engine import NotDue, PermanentError, RetryLater
from tgworkers.peers import (
    AnswerKind,
    PeerAuthError,
    PeerNotDueError,
    PeerPermanentError,
    PeerTransientError,
    PeerUnexpectedError,
    classify,
)
from tgworkers.peers.answers import to_error

NOW_MS = 1_767_225_600_000  # Thu, 01 Jan 2026 00:00:00 GMT
RELEASE = frozenset({"hold_not_active"})


def _body(code: str, **extra: object) -> bytes:
    import json

    return json.dumps({"code": code, "message": "m", **extra}).encode()


@pytest.mark.parametrize(
    ("status", "body", "success_codes", "kind"),
    [
        (200, b'{"ok": true}', frozenset(), AnswerKind.SUCCESS),
        (201, b"", frozenset(), AnswerKind.SUCCESS),
        (204, b"", frozenset(), AnswerKind.SUCCESS),
        (409, _body("already_done"), frozenset(), AnswerKind.SUCCESS_EQUIVALENT),
        (409, _body("hold_not_active"), RELEASE, AnswerKind.SUCCESS_EQUIVALENT),
        (409, _body("hold_not_active"), frozenset(), AnswerKind.PERMANENT),  # on a settlement
        (409, _body("invalid_transition"), frozenset(), AnswerKind.PERMANENT),
        (409, _body("not_due", retryAt=5), frozenset(), AnswerKind.NOT_DUE),
        (425, b"", frozenset(), AnswerKind.NOT_DUE),
        (408, b"", frozenset(), AnswerKind.TRANSIENT),
        (429, b"", frozenset(), AnswerKind.TRANSIENT),
        (500, b"oops", frozenset(), AnswerKind.TRANSIENT),
        (502, b"", frozenset(), AnswerKind.TRANSIENT),
        (503, b"", frozenset(), AnswerKind.TRANSIENT),
        (504, b"", frozenset(), AnswerKind.TRANSIENT),
        (400, _body("bad_request"), frozenset(), AnswerKind.PERMANENT),
        (404, _body("bet_not_found"), frozenset(), AnswerKind.PERMANENT),
        (410, b"", frozenset(), AnswerKind.PERMANENT),
        (422, _body("unbalanced"), frozenset(), AnswerKind.PERMANENT),
        (401, b"", frozenset(), AnswerKind.AUTH),
        (403, b"", frozenset(), AnswerKind.AUTH),
        (409, _body("something_new"), frozenset(), AnswerKind.UNEXPECTED),
        (409, b"<html>conflict</html>", frozenset(), AnswerKind.UNEXPECTED),
        (418, b"", frozenset(), AnswerKind.UNEXPECTED),
        (501, b"", frozenset(), AnswerKind.UNEXPECTED),
        (302, b"", frozenset(), AnswerKind.UNEXPECTED),
    ],
)
def test_each_row_of_the_answer_table(
    status: int, body: bytes, success_codes: frozenset[str], kind: AnswerKind
) -> None:
    assert classify(status, {}, body, success_codes=success_codes, now_ms=NOW_MS).kind is kind


def test_not_due_carries_retry_at_from_the_body() -> None:
    answer = classify(409, {}, _body("not_due", retryAt=NOW_MS + 5000), now_ms=NOW_MS)
    assert (answer.retry_at_ms, answer.code) == (NOW_MS + 5000, "not_due")


def test_425_without_retry_at_uses_retry_after_or_leaves_it_to_backoff() -> None:
    assert classify(425, {"retry-after": "3"}, b"", now_ms=NOW_MS).retry_at_ms == NOW_MS + 3000
    assert classify(425, {}, b"", now_ms=NOW_MS).retry_at_ms is None


@pytest.mark.parametrize(
    ("retry_after", "after_ms"),
    [
        ("120", 120_000),
        (" 0 ", 0),
        ("Thu, 01 Jan 2026 00:00:30 GMT", 30_000),
        ("Wed, 31 Dec 2025 23:59:00 GMT", 0),  # in the past: no extra wait
        ("soon", None),
        ("-5", None),
        ("1.5", None),
    ],
)
def test_retry_after_in_seconds_or_as_an_http_date(retry_after: str, after_ms: int | None) -> None:
    answer = classify(503, {"retry-after": retry_after}, b"", now_ms=NOW_MS)
    assert answer.retry_after_ms == after_ms


def test_the_body_is_cut_to_2_kib() -> None:
    answer = classify(400, {}, b'{"code": "bad", "message": "' + b"x" * 5000 + b'"}')
    assert len(answer.body.encode()) == 2048
    assert answer.code == "bad"


@pytest.mark.parametrize(
    ("status", "body", "error_type", "signal"),
    [
        (422, _body("unbalanced"), PeerPermanentError, PermanentError),
        (409, _body("not_due", retryAt=7), PeerNotDueError, NotDue),
        (503, b"", PeerTransientError, RetryLater),
        (401, b"", PeerAuthError, RetryLater),
        (418, b"", PeerUnexpectedError, RetryLater),
    ],
)
def test_each_kind_raises_a_subclass_of_the_engine_signal(
    status: int, body: bytes, error_type: type[Exception], signal: type[Exception]
) -> None:
    answer = classify(status, {"retry-after": "9"}, body, now_ms=NOW_MS)
    error = to_error(answer, peer="payhub", operation="POST /internal/v1/settlements")
    assert type(error) is error_type
    assert isinstance(error, signal)
    assert (error.peer, error.status) == ("payhub", status)
    assert str(error).startswith(f"payhub POST /internal/v1/settlements: HTTP {status}")
    if isinstance(error, RetryLater):
        assert error.after_ms == 9000
    if isinstance(error, NotDue):
        assert error.retry_at_ms == 7
