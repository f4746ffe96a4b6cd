"""Bounds on what one request may ask for or send.

Every list endpoint (admin API and console) takes `limit` through `page_limit`:
default 100, at most `MAX_LIMIT`; above it, or not a whole number, the request is
refused (400) with a message naming the maximum, so no single answer is built
from an unbounded structure on the worker's own event loop. Bodies are read
through `capped_body`, which stops reading at `MAX_BODY_BYTES` (413).
"""

from __future__ import annotations

from typing import Final

from starlette.requests import Request

from tgworkers.errors import InputError

DEFAULT_LIMIT: Final = 100
MAX_LIMIT: Final = 1000
MAX_BODY_BYTES: Final = 1_048_576
"""1 MiB: a DLQ selection of 1,000 ids or a payload at MAX_PAYLOAD_BYTES fits easily."""


class BadRequestError(InputError):
    """A query parameter out of range or malformed (400)."""


class BodyTooLargeError(InputError):
    """A request body over `MAX_BODY_BYTES` (413)."""


def parse_limit(raw: str | None, *, default: int = DEFAULT_LIMIT) -> int:
    """`limit` as an int in 1..MAX_LIMIT; `BadRequestError` naming the maximum otherwise."""
    if raw is None or raw == "":
        return default
    text = raw.strip()
    if not text.isascii() or not text.isdigit():
        raise BadRequestError(f"limit: expected a whole number from 1 to {MAX_LIMIT}, got {raw!r}")
    value = int(text)
    if value < 1 or value > MAX_LIMIT:
        raise BadRequestError(f"limit: at most {MAX_LIMIT} (and at least 1), got {value}")
    return value


def page_limit(request: Request, *, default: int = DEFAULT_LIMIT) -> int:
    return parse_limit(request.query_params.get("limit"), default=default)


async def capped_body(request: Request, max_bytes: int = MAX_BODY_BYTES) -> bytes:
    """The request body, refused once it passes `max_bytes` (declared or streamed)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise BodyTooLargeError(f"request body: at most {max_bytes} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise BodyTooLargeError(f"request body: at most {max_bytes} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
